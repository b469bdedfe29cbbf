// What both halves of k8s_sat share: the attestor's name, the payload `{"cluster", "token"}` and the
// rule for cluster names. A cluster name becomes a path segment of the agent ID
// (`/sigil/agent/k8s_sat/<cluster>/…`) and a selector value, so both halves hold it to the same shape.
import { parseJsonStrict } from '../../../spiffe/bundle.js';
import { quote, SigilError } from '../../../spiffe/errors.js';

export const K8S_SAT_ATTESTOR = 'k8s_sat';

/** Projected tokens are ~1 KiB; a payload this large is not one. */
export const MAX_PAYLOAD_BYTES = 16 * 1024;

// SPIFFE path segment characters; a leading letter or digit rules out "." and "..".
const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Why `name` cannot name a cluster, or undefined when it can. */
export function clusterNameProblem(name: string): string | undefined {
  if (CLUSTER_NAME.test(name)) return undefined;
  return `cluster name ${quote(name)} must be 1-63 letters, digits, ".", "-" or "_", starting with a letter or digit`;
}

export interface K8sSatPayload {
  readonly cluster: string;
  readonly token: string;
}

export function encodePayload(payload: K8sSatPayload): Buffer {
  return Buffer.from(JSON.stringify({ cluster: payload.cluster, token: payload.token }));
}

/** ERR_INPUT_INVALID when malformed; messages never quote the token. */
export function decodePayload(bytes: Buffer): K8sSatPayload {
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw payloadError(`payload is ${bytes.length} bytes (at most ${MAX_PAYLOAD_BYTES})`);
  }
  const value = parseJsonStrict(bytes.toString('utf8'), 'ERR_INPUT_INVALID', 'k8s_sat: payload');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw payloadError('payload must be a JSON object {"cluster", "token"}');
  }
  const { cluster, token, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0)
    throw payloadError(`payload member ${quote(extra[0])} is not allowed (only cluster, token)`);
  if (typeof cluster !== 'string' || cluster === '')
    throw payloadError('payload "cluster" must be a non-empty string');
  if (typeof token !== 'string' || token === '')
    throw payloadError('payload "token" must be a non-empty string');
  return { cluster, token };
}

function payloadError(rule: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `k8s_sat: ${rule}`, { reason: 'payload' });
}
