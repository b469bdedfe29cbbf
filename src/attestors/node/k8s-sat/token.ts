// Offline validation of a Kubernetes service account token against one cluster's signing keys. These
// are not JWT-SVIDs (sub is `system:serviceaccount:<ns>:<sa>`, kid is optional, legacy tokens have no
// exp or aud), so jwt-svid.ts's validator does not apply. Only RS256 and ES256, the algorithms the
// API server signs with. Every refusal is ERR_PERMISSION_DENIED naming the failed check; the token is
// a bearer credential, so no message contains it or any part of it.
import { constants, type KeyObject, verify } from 'node:crypto';
import { parseJsonStrict } from '../../../spiffe/bundle.js';
import { isSigilError, quote, SigilError } from '../../../spiffe/errors.js';

export const TOKEN_ALGS = ['RS256', 'ES256'] as const;
type TokenAlg = (typeof TOKEN_ALGS)[number];

/** Skew tolerated on nbf and iat only: exp is strict, so a token is never used past its lifetime. */
const NOT_BEFORE_LEEWAY_MS = 60_000;
/** RFC 7518 §3.3. */
const MIN_RSA_BITS = 2048;
/** ES256 signatures are raw r||s (RFC 7518 §3.4). */
const ES256_SIGNATURE_BYTES = 64;
/** Keeps the claim used to build the agent ID to one path segment's characters. */
const UID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export interface ClusterPolicy {
  readonly name: string;
  /** Public keys that sign this cluster's service account tokens (RSA >= 2048 bits or EC P-256). */
  readonly keys: readonly KeyObject[];
  /** Projected tokens must list it in `aud`. */
  readonly audience: string;
  /** `namespace:name` pairs allowed to attest; null allows every service account. */
  readonly allowedServiceAccounts: ReadonlySet<string> | null;
  /** Whether tokens in the legacy (secret-based, no exp, no aud) format are accepted. */
  readonly allowLegacyTokens: boolean;
}

export interface ServiceAccountIdentity {
  readonly namespace: string;
  readonly serviceAccountName: string;
  readonly podName: string | undefined;
  readonly podUid: string | undefined;
  readonly nodeName: string | undefined;
  readonly nodeUid: string | undefined;
  readonly jti: string | undefined;
  readonly legacy: boolean;
}

/** Whether `key` can verify `alg`; also used to vet configured keys. */
export function keyFitsAlg(key: KeyObject, alg: TokenAlg): boolean {
  if (alg === 'ES256')
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  return key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= MIN_RSA_BITS;
}

export function validateServiceAccountToken(
  token: string,
  cluster: ClusterPolicy,
  nowMs: number,
): ServiceAccountIdentity {
  const parts = token.split('.');
  if (parts.length !== 3)
    throw refuse('token is not a compact JWS (expected three dot-separated parts)', 'compact');
  const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
  // Header first: an unacceptable algorithm is refused before the rest is even decoded.
  const header = decodeJsonPart(headerPart, 'header');
  const alg = header.alg;
  if (typeof alg !== 'string' || !(TOKEN_ALGS as readonly string[]).includes(alg)) {
    throw refuse(`token algorithm ${quote(alg)} is not allowed (allowed: ${TOKEN_ALGS.join(', ')})`, 'alg');
  }
  // RFC 7515 §4.1.11: a recipient must refuse critical extensions it does not understand (all of them).
  if (header.crit !== undefined)
    throw refuse('token header has "crit" extensions, which are not supported', 'crit');
  const claims = decodeJsonPart(claimsPart, 'claims');
  const signature = decodeBase64Url(signaturePart, 'signature');
  checkSignature(alg as TokenAlg, `${headerPart}.${claimsPart}`, signature, cluster);

  if (typeof claims.iss !== 'string' || claims.iss === '') throw refuse('token has no iss claim', 'iss');
  const account = readServiceAccount(claims);
  if (account.legacy && !cluster.allowLegacyTokens) {
    throw refuse(
      `legacy service account token refused (cluster ${quote(cluster.name)} does not set allow_legacy_tokens)`,
      'legacy',
    );
  }
  checkTimes(claims, account.legacy, nowMs);
  if (!account.legacy) checkAudience(claims.aud, cluster.audience);

  const expectedSub = `system:serviceaccount:${account.namespace}:${account.serviceAccountName}`;
  if (claims.sub !== expectedSub) {
    throw refuse(
      `token sub ${quote(claims.sub)} does not match its service account claims (${quote(expectedSub)})`,
      'sub',
    );
  }
  const allowed = cluster.allowedServiceAccounts;
  const pair = `${account.namespace}:${account.serviceAccountName}`;
  if (allowed !== null && !allowed.has(pair)) {
    throw refuse(
      `service account ${quote(pair)} is not allowed in cluster ${quote(cluster.name)}`,
      'not-allowed',
    );
  }
  if (claims.jti !== undefined && (typeof claims.jti !== 'string' || claims.jti === '')) {
    throw refuse('token jti claim must be a non-empty string', 'jti');
  }
  return Object.freeze({ ...account, jti: claims.jti as string | undefined });
}

function checkSignature(
  alg: TokenAlg,
  signingInput: string,
  signature: Buffer,
  cluster: ClusterPolicy,
): void {
  const keys = cluster.keys.filter((key) => keyFitsAlg(key, alg));
  if (keys.length === 0) {
    throw refuse(
      `cluster ${quote(cluster.name)} has no service account key that can verify ${alg}`,
      'no-key',
    );
  }
  if (alg === 'ES256' && signature.length !== ES256_SIGNATURE_BYTES) {
    throw refuse(
      `token signature does not verify with any service account key of cluster ${quote(cluster.name)}`,
      'signature',
    );
  }
  const options =
    alg === 'ES256' ? { dsaEncoding: 'ieee-p1363' as const } : { padding: constants.RSA_PKCS1_PADDING };
  const data = Buffer.from(signingInput);
  const verifies = keys.some((key) => {
    try {
      return verify('sha256', data, { key, ...options }, signature);
    } catch {
      // OpenSSL throws on some malformed signatures instead of returning false: not valid either way.
      return false;
    }
  });
  if (!verifies) {
    throw refuse(
      `token signature does not verify with any service account key of cluster ${quote(cluster.name)}`,
      'signature',
    );
  }
}

type Claims = Record<string, unknown>;

/** Projected tokens nest under `kubernetes.io`; legacy (secret) tokens use flat `kubernetes.io/serviceaccount/*` claims. */
function readServiceAccount(claims: Claims): Omit<ServiceAccountIdentity, 'jti'> {
  const projected = claims['kubernetes.io'];
  if (projected !== undefined) {
    const k8s = objectClaim(projected, 'kubernetes.io');
    const serviceAccount = objectClaim(k8s.serviceaccount, 'kubernetes.io.serviceaccount');
    const pod = k8s.pod === undefined ? undefined : objectClaim(k8s.pod, 'kubernetes.io.pod');
    const node = k8s.node === undefined ? undefined : objectClaim(k8s.node, 'kubernetes.io.node');
    return {
      namespace: stringClaim(k8s.namespace, 'kubernetes.io.namespace'),
      serviceAccountName: stringClaim(serviceAccount.name, 'kubernetes.io.serviceaccount.name'),
      podName: pod === undefined ? undefined : stringClaim(pod.name, 'kubernetes.io.pod.name'),
      podUid: pod === undefined ? undefined : uidClaim(pod.uid, 'kubernetes.io.pod.uid'),
      nodeName: node === undefined ? undefined : stringClaim(node.name, 'kubernetes.io.node.name'),
      nodeUid: node === undefined ? undefined : uidClaim(node.uid, 'kubernetes.io.node.uid'),
      legacy: false,
    };
  }
  const legacyNamespace = claims['kubernetes.io/serviceaccount/namespace'];
  if (legacyNamespace !== undefined) {
    const nameClaim = 'kubernetes.io/serviceaccount/service-account.name';
    return {
      namespace: stringClaim(legacyNamespace, 'kubernetes.io/serviceaccount/namespace'),
      serviceAccountName: stringClaim(claims[nameClaim], nameClaim),
      podName: undefined,
      podUid: undefined,
      nodeName: undefined,
      nodeUid: undefined,
      legacy: true,
    };
  }
  throw refuse('token has no Kubernetes service account claims (neither projected nor legacy)', 'claims');
}

function checkTimes(claims: Claims, legacy: boolean, nowMs: number): void {
  const exp = numericDate(claims.exp, 'exp');
  if (exp === undefined) {
    // Legacy tokens never expire; they reach here only when the cluster allows them.
    if (!legacy) throw refuse('token has no exp claim', 'exp-missing');
  } else if (nowMs >= exp * 1000) {
    throw refuse(`token expired at ${iso(exp * 1000)} (now ${iso(nowMs)})`, 'expired');
  }
  const nbf = numericDate(claims.nbf, 'nbf');
  if (nbf !== undefined && nowMs + NOT_BEFORE_LEEWAY_MS < nbf * 1000) {
    throw refuse(`token is not valid until ${iso(nbf * 1000)} (now ${iso(nowMs)})`, 'nbf');
  }
  const iat = numericDate(claims.iat, 'iat');
  if (iat !== undefined && nowMs + NOT_BEFORE_LEEWAY_MS < iat * 1000) {
    throw refuse(`token was issued in the future (${iso(iat * 1000)}, now ${iso(nowMs)})`, 'iat');
  }
}

function checkAudience(aud: unknown, audience: string): void {
  const audiences = typeof aud === 'string' ? [aud] : aud;
  if (aud === undefined) throw refuse(`token has no aud claim (expected ${quote(audience)})`, 'aud-missing');
  if (!Array.isArray(audiences) || !audiences.every((a) => typeof a === 'string')) {
    throw refuse('token aud claim must be a string or a list of strings', 'aud-type');
  }
  if (!audiences.includes(audience)) {
    const shown = audiences.slice(0, 5).map((a) => quote(a));
    if (audiences.length > 5) shown.push('…');
    throw refuse(`token audience [${shown.join(', ')}] does not include ${quote(audience)}`, 'aud');
  }
}

function numericDate(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw refuse(`token ${name} claim must be a number of seconds`, `${name}-type`);
  }
  return value;
}

function objectClaim(value: unknown, name: string): Claims {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw refuse(`token claim ${name} must be an object`, 'claims');
  }
  return value as Claims;
}

function stringClaim(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '')
    throw refuse(`token claim ${name} must be a non-empty string`, 'claims');
  return value;
}

function uidClaim(value: unknown, name: string): string {
  const uid = stringClaim(value, name);
  if (!UID_PATTERN.test(uid)) throw refuse(`token claim ${name} is not a Kubernetes UID`, 'claims');
  return uid;
}

function decodeJsonPart(part: string, name: 'header' | 'claims'): Claims {
  const bytes = decodeBase64Url(part, name);
  let value: unknown;
  try {
    value = parseJsonStrict(bytes.toString('utf8'), 'ERR_PERMISSION_DENIED', `k8s_sat: token ${name}`);
  } catch (err) {
    if (isSigilError(err)) throw refuse(`token ${name} is not valid JSON`, 'json', err);
    throw err;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw refuse(`token ${name} must be a JSON object`, 'json');
  }
  return value as Claims;
}

function decodeBase64Url(part: string, name: string): Buffer {
  const bytes = Buffer.from(part, 'base64url');
  // Re-encoding must give the same text: refuses padding, other alphabets and stray characters.
  if (part === '' || !/^[A-Za-z0-9_-]+$/.test(part) || bytes.toString('base64url') !== part) {
    throw refuse(`token ${name} is not unpadded base64url`, 'base64url');
  }
  return bytes;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function refuse(rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError('ERR_PERMISSION_DENIED', `k8s_sat: ${rule}`, { reason, cause });
}
