// join_token, server half: a single-use, expiring secret minted by an operator. This half only checks
// that the token is unspent and unexpired; the server spends it atomically when it commits the
// attestation, so of two agents racing with one token exactly one attests, and a refused attestation
// leaves it usable. The token is a secret until used: no message here ever contains it.
import { isSigilError, SigilError } from '../../../spiffe/errors.js';
import { ConfigCheck } from '../config-check.js';
import type {
  JoinTokenReader,
  NodeAttestation,
  NodeAttestContext,
  NodeAttestorServer,
  NodeAttestorServerDeps,
} from '../types.js';
import { isJoinTokenShape, JOIN_TOKEN_ATTESTOR } from './token.js';

/** The token travels as the whole payload; anything this long is not a token. */
const MAX_PAYLOAD_BYTES = 1024;

/** Builds the server half; it takes no settings, so any key in `rawConfig` is an error. */
export function createJoinTokenServer(
  rawConfig: unknown,
  deps: NodeAttestorServerDeps,
  field = `node_attestors.${JOIN_TOKEN_ATTESTOR}`,
): NodeAttestorServer {
  const check = new ConfigCheck(field);
  check.mapping(field, rawConfig, [], true);
  check.finish();
  return new JoinTokenServer(deps.joinTokens);
}

class JoinTokenServer implements NodeAttestorServer {
  readonly name = JOIN_TOKEN_ATTESTOR;

  constructor(private readonly tokens: JoinTokenReader) {}

  async attest(payload: Buffer, context: NodeAttestContext): Promise<NodeAttestation> {
    if (payload.length > MAX_PAYLOAD_BYTES) throw refuse('payload is too large to be a join token', 'size');
    const token = payload.toString('utf8');
    // Shape first: garbage never reaches the store, and the token is safe to use as a path segment.
    if (!isJoinTokenShape(token)) throw refuse('payload is not a well-formed join token', 'shape');
    context.signal.throwIfAborted();
    let found: { readonly spiffeId: string | null };
    try {
      found = await this.tokens.fetchJoinToken(token, context.nowMs);
    } catch (err) {
      if (isSigilError(err, 'ERR_TOKEN_NOT_FOUND')) {
        throw refuseUnknownJoinToken('unknown', err);
      }
      if (isSigilError(err, 'ERR_TOKEN_EXPIRED')) throw refuse('join token expired', 'expired', err);
      throw err;
    }
    return Object.freeze({
      agentPath: `/sigil/agent/join_token/${token}`,
      // As SPIRE: the token names the agent, it says nothing about the node to select on.
      selectors: Object.freeze([]),
      // The token is gone once used; an agent that loses its SVID needs a new one.
      canReattest: false,
      aliases: Object.freeze(found.spiffeId === null ? [] : [found.spiffeId]),
      joinToken: token,
    });
  }
}

/**
 * The refusal of a token the store does not hold: never issued, or already spent. The server gives it
 * too (reason `spent`) when a racing attestation spent the token between this check and its commit.
 */
export function refuseUnknownJoinToken(reason: 'unknown' | 'spent', cause?: unknown): SigilError {
  return refuse('join token is unknown or already used', reason, cause);
}

function refuse(rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError('ERR_PERMISSION_DENIED', `join_token: ${rule}`, { reason, cause });
}
