// join_token, agent half: sends the operator-issued token once. Single-shot: it never answers a
// challenge. The token is checked for shape here too, so a pasted typo fails at startup.
import { SigilError } from '../../../spiffe/errors.js';
import { ConfigCheck } from '../config-check.js';
import type { NodeAttestorAgent } from '../types.js';
import { isJoinTokenShape, JOIN_TOKEN_ATTESTOR, MAX_JOIN_TOKEN_CHARS } from './token.js';

/** Config: `{ token: string }`, the token printed by `sigil-server token generate`. */
export function createJoinTokenAgent(
  rawConfig: unknown,
  field = `node_attestors.${JOIN_TOKEN_ATTESTOR}`,
): NodeAttestorAgent {
  const check = new ConfigCheck(field);
  const raw = check.mapping(field, rawConfig, ['token']);
  const tokenPath = check.path('token');
  const token = raw === null ? undefined : check.string(tokenPath, raw.token, true);
  // The value is a secret: the rule is named, the value is not.
  if (token !== undefined && !isJoinTokenShape(token)) {
    check.problem(
      tokenPath,
      `must be letters, digits, "-" or "_", at most ${MAX_JOIN_TOKEN_CHARS} characters`,
    );
  }
  check.finish();
  return new JoinTokenAgent(token!);
}

class JoinTokenAgent implements NodeAttestorAgent {
  readonly name = JOIN_TOKEN_ATTESTOR;

  constructor(private readonly token: string) {}

  async payload(): Promise<Buffer> {
    return Buffer.from(this.token, 'utf8');
  }

  async respond(): Promise<Buffer> {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      'join_token: attestation is single-shot; the server sent a challenge',
      {
        reason: 'challenge',
      },
    );
  }
}
