// k8s_sat, server half: validates a Kubernetes service account token offline, with the public keys
// the cluster's API server signs tokens with (no TokenReview call, so the server needs no cluster
// credentials). The agent ID is keyed by the pod UID when the token is a projected one bound to a pod.
import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { isSigilError, quote, SigilError } from '../../../spiffe/errors.js';
import { decodePem } from '../../../spiffe/pem.js';
import { makeSelector, type Selector } from '../../../spiffe/selector.js';
import { ConfigCheck, type RawMapping, type ReadTextFile } from '../config-check.js';
import type { NodeAttestation, NodeAttestContext, NodeAttestorServer } from '../types.js';
import { clusterNameProblem, decodePayload, K8S_SAT_ATTESTOR } from './protocol.js';
import {
  type ClusterPolicy,
  keyFitsAlg,
  type ServiceAccountIdentity,
  validateServiceAccountToken,
} from './token.js';

/** Audience projected tokens must carry when a cluster sets none. */
export const DEFAULT_AUDIENCE = 'sigil-server';

const CLUSTER_KEYS = [
  'service_account_key_files',
  'audience',
  'allowed_service_accounts',
  'allow_legacy_tokens',
] as const;
// Kubernetes names (namespaces, service accounts) never contain ":" or whitespace.
const SERVICE_ACCOUNT_PAIR = /^[^:\s]+:[^:\s]+$/;

/**
 * Config: `{ clusters: { <name>: { service_account_key_files: string[], audience?: string (default
 * "sigil-server"), allowed_service_accounts?: string[] ("namespace:name"), allow_legacy_tokens?:
 * boolean (default false) } } }`. Key files hold PEM public keys or certificates, RSA >= 2048 or EC P-256.
 */
export function createK8sSatServer(
  rawConfig: unknown,
  field = `node_attestors.${K8S_SAT_ATTESTOR}`,
  readTextFile?: ReadTextFile,
): NodeAttestorServer {
  const check = new ConfigCheck(field, readTextFile);
  const raw = check.mapping(field, rawConfig, ['clusters']);
  const clustersPath = check.path('clusters');
  const clusters = new Map<string, ClusterPolicy>();
  if (raw !== null && raw.clusters === undefined)
    check.problem(clustersPath, 'is required (one entry per cluster)');
  const rawClusters = raw?.clusters === undefined ? null : check.mapping(clustersPath, raw.clusters, null);
  if (rawClusters !== null && Object.keys(rawClusters).length === 0) {
    check.problem(clustersPath, 'must name at least one cluster');
  }
  for (const [name, value] of Object.entries(rawClusters ?? {})) {
    const cluster = parseCluster(check, check.path(name, clustersPath), name, value);
    if (cluster !== undefined) clusters.set(name, cluster);
  }
  check.finish();
  return new K8sSatServer(clusters);
}

function parseCluster(
  check: ConfigCheck,
  path: string,
  name: string,
  value: unknown,
): ClusterPolicy | undefined {
  const nameProblem = clusterNameProblem(name);
  if (nameProblem !== undefined) check.problem(path, nameProblem);
  const raw: RawMapping | null = check.mapping(path, value, CLUSTER_KEYS);
  if (raw === null) return undefined;
  const keysPath = check.path('service_account_key_files', path);
  const rawFiles = raw.service_account_key_files;
  if (rawFiles === undefined) {
    check.problem(keysPath, 'is required (PEM public keys or certificates of the token signers)');
  }
  const files = rawFiles === undefined ? undefined : check.stringList(keysPath, rawFiles, 1);
  const keys = (files ?? []).flatMap((file, i) => readKeys(check, `${keysPath}[${i}]`, file));
  const audience = check.string(check.path('audience', path), raw.audience, false) ?? DEFAULT_AUDIENCE;
  const allowedPath = check.path('allowed_service_accounts', path);
  let allowed: Set<string> | null = null;
  if (raw.allowed_service_accounts !== undefined) {
    const pairs = check.stringList(allowedPath, raw.allowed_service_accounts, 1) ?? [];
    pairs.forEach((pair, i) => {
      if (!SERVICE_ACCOUNT_PAIR.test(pair))
        check.problem(`${allowedPath}[${i}]`, `"${pair}" is not "namespace:name"`);
    });
    allowed = new Set(pairs);
  }
  const allowLegacyTokens = check.boolean(
    check.path('allow_legacy_tokens', path),
    raw.allow_legacy_tokens,
    false,
  );
  if (!check.ok || nameProblem !== undefined) return undefined;
  return Object.freeze({
    name,
    keys: Object.freeze(keys),
    audience,
    allowedServiceAccounts: allowed,
    allowLegacyTokens,
  });
}

/** Every key in a PEM file: PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE blocks. */
function readKeys(check: ConfigCheck, path: string, file: string): KeyObject[] {
  const pem = check.readFile(path, file);
  if (pem === undefined) return [];
  let blocks: ReturnType<typeof decodePem>;
  try {
    blocks = decodePem(pem, file);
  } catch (err) {
    check.problem(path, (err as Error).message);
    return [];
  }
  if (blocks.length === 0)
    check.problem(path, `${file} holds no PEM block (expected PUBLIC KEY or CERTIFICATE)`);
  const keys: KeyObject[] = [];
  blocks.forEach((block, i) => {
    let key: KeyObject;
    try {
      key = publicKeyOf(block.label, block.der);
    } catch (err) {
      check.problem(
        path,
        `${file}: PEM block ${i} ("${block.label}") is not a usable public key: ${(err as Error).message}`,
      );
      return;
    }
    if (!keyFitsAlg(key, 'RS256') && !keyFitsAlg(key, 'ES256')) {
      check.problem(
        path,
        `${file}: PEM block ${i} holds a key that verifies neither RS256 (RSA >= 2048) nor ES256 (EC P-256)`,
      );
      return;
    }
    keys.push(key);
  });
  return keys;
}

function publicKeyOf(label: string, der: Buffer): KeyObject {
  switch (label) {
    case 'PUBLIC KEY':
      return createPublicKey({ key: der, format: 'der', type: 'spki' });
    case 'RSA PUBLIC KEY':
      return createPublicKey({ key: der, format: 'der', type: 'pkcs1' });
    case 'CERTIFICATE':
      return new X509Certificate(der).publicKey;
    default:
      throw new Error('expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE');
  }
}

class K8sSatServer implements NodeAttestorServer {
  readonly name = K8S_SAT_ATTESTOR;

  constructor(private readonly clusters: ReadonlyMap<string, ClusterPolicy>) {}

  async attest(payload: Buffer, context: NodeAttestContext): Promise<NodeAttestation> {
    let cluster: string;
    let token: string;
    try {
      ({ cluster, token } = decodePayload(payload));
    } catch (err) {
      if (!isSigilError(err, 'ERR_INPUT_INVALID')) throw err;
      throw new SigilError(
        'ERR_PERMISSION_DENIED',
        `k8s_sat: malformed payload: ${err.message.replace(/^k8s_sat: /, '')}`,
        {
          reason: 'payload',
          cause: err,
        },
      );
    }
    const policy = this.clusters.get(cluster);
    if (policy === undefined) {
      throw new SigilError(
        'ERR_PERMISSION_DENIED',
        `k8s_sat: cluster ${quote(cluster)} is not configured (configured: ${[...this.clusters.keys()].join(', ')})`,
        { reason: 'cluster' },
      );
    }
    const account = validateServiceAccountToken(token, policy, context.nowMs);
    // Pod UID: stable for the pod's life, so a restarted agent in the same pod re-attests to the same ID.
    const idSegment =
      account.podUid ??
      createHash('sha256')
        .update(account.jti ?? token)
        .digest('hex');
    return Object.freeze({
      agentPath: `/sigil/agent/k8s_sat/${policy.name}/${idSegment}`,
      selectors: Object.freeze(selectorsOf(policy.name, account)),
      // A fresh token can be presented each time, so the agent may attest again.
      canReattest: true,
      aliases: Object.freeze([]),
    });
  }
}

function selectorsOf(cluster: string, account: ServiceAccountIdentity): Selector[] {
  const values: [string, string | undefined][] = [
    ['cluster', cluster],
    ['agent_ns', account.namespace],
    ['agent_sa', account.serviceAccountName],
    ['agent_pod_name', account.podName],
    ['agent_pod_uid', account.podUid],
    ['agent_node_name', account.nodeName],
    ['agent_node_uid', account.nodeUid],
  ];
  return values
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([kind, value]) => {
      try {
        return makeSelector(K8S_SAT_ATTESTOR, `${kind}:${value}`);
      } catch (err) {
        // A claim with control characters or of absurd length: refuse rather than drop it silently.
        throw new SigilError(
          'ERR_PERMISSION_DENIED',
          `k8s_sat: token claim yields an unusable selector: ${(err as Error).message}`,
          {
            reason: 'selector',
            cause: err,
          },
        );
      }
    });
}
