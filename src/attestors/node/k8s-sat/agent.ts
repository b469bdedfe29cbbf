// k8s_sat, agent half: sends the projected service account token the kubelet keeps in a file. The file
// is read afresh for every attestation because the kubelet rotates the token in place.
import { readFile } from 'node:fs/promises';
import { SigilError } from '../../../spiffe/errors.js';
import { ConfigCheck } from '../config-check.js';
import type { NodeAttestorAgent } from '../types.js';
import { clusterNameProblem, encodePayload, K8S_SAT_ATTESTOR, MAX_PAYLOAD_BYTES } from './protocol.js';

/** Where the agent's pod mounts its projected token (a `serviceAccountToken` volume projection). */
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/sigil-agent';

export type ReadTokenFile = (file: string) => Promise<string>;

/** Config: `{ cluster: string, token_path?: string (default /var/run/secrets/tokens/sigil-agent) }`. */
export function createK8sSatAgent(
  rawConfig: unknown,
  field = `node_attestors.${K8S_SAT_ATTESTOR}`,
  readTokenFile: ReadTokenFile = (file) => readFile(file, 'utf8'),
): NodeAttestorAgent {
  const check = new ConfigCheck(field);
  const raw = check.mapping(field, rawConfig, ['cluster', 'token_path']) ?? {};
  const clusterPath = check.path('cluster');
  const cluster = check.string(clusterPath, raw.cluster, true);
  const nameProblem = cluster === undefined ? undefined : clusterNameProblem(cluster);
  if (nameProblem !== undefined) check.problem(clusterPath, nameProblem);
  const tokenPath = check.string(check.path('token_path'), raw.token_path, false) ?? DEFAULT_TOKEN_PATH;
  check.finish();
  return new K8sSatAgent(cluster!, tokenPath, readTokenFile);
}

class K8sSatAgent implements NodeAttestorAgent {
  readonly name = K8S_SAT_ATTESTOR;

  constructor(
    private readonly cluster: string,
    private readonly tokenPath: string,
    private readonly readTokenFile: ReadTokenFile,
  ) {}

  async payload(): Promise<Buffer> {
    let text: string;
    try {
      text = await this.readTokenFile(this.tokenPath);
    } catch (err) {
      // Unavailable rather than invalid: the kubelet may not have written the token yet; a retry can succeed.
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new SigilError('ERR_UNAVAILABLE', `k8s_sat: cannot read token file ${this.tokenPath}: ${code}`, {
        reason: 'token-file',
        cause: err,
      });
    }
    // Hand-written token files often end in a newline; the kubelet's never do.
    const token = text.trim();
    if (token === '') {
      throw new SigilError('ERR_UNAVAILABLE', `k8s_sat: token file ${this.tokenPath} is empty`, {
        reason: 'token-file',
      });
    }
    const payload = encodePayload({ cluster: this.cluster, token });
    if (payload.length > MAX_PAYLOAD_BYTES) {
      throw new SigilError(
        'ERR_INPUT_INVALID',
        `k8s_sat: token file ${this.tokenPath} is too large to be a service account token`,
        { reason: 'token-file' },
      );
    }
    return payload;
  }

  async respond(): Promise<Buffer> {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      'k8s_sat: attestation is single-shot; the server sent a challenge',
      {
        reason: 'challenge',
      },
    );
  }
}
