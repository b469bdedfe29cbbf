// JWT-SVIDs (spiffe-facts.md §3): minting with a JWT signing key, and validating against the bundle
// of the subject's trust domain in go-spiffe's order, so a token fails here the way it fails there.
// Compact JWS only, node:crypto only: no JWE, no JSON serialization, no key fetching, no clock (the
// caller passes the time).
import { constants, KeyObject, sign, verify } from 'node:crypto';
import { parseJsonStrict, type TrustBundle } from './bundle.js';
import { quote, SigilError, type SigilErrorCode } from './errors.js';
import { parseSpiffeId, type SpiffeId, type TrustDomain } from './id.js';
import { type KeyType, keyTypeOf } from './keys.js';
import { unsafeCharacterIn } from './text.js';

export type JwtAlg = 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'ES512' | 'PS256' | 'PS384' | 'PS512';

/** The JWT-SVID spec's list; `none`, HS* and EdDSA are refused whatever the caller allows. */
const JWT_ALGS: readonly JwtAlg[] = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
];
/** go-jose's default leeway, which go-spiffe and SPIRE inherit: 1 minute on exp, nbf and iat. */
const DEFAULT_LEEWAY_MS = 60_000;
const HEADER_MEMBERS: ReadonlySet<string> = new Set(['alg', 'kid', 'typ']);
/** RFC 7518 §3.3: RSA keys for RS and PS algorithms must be at least 2048 bits. */
const MIN_RSA_BITS = 2048;

interface AlgSpec {
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly family: 'RS' | 'PS' | 'ES';
  /** ES only: the OpenSSL curve name the algorithm is defined on, and its raw (r||s) signature size. */
  readonly curve?: string;
  readonly signatureBytes?: number;
}

const ALGS: Readonly<Record<JwtAlg, AlgSpec>> = {
  RS256: { family: 'RS', hash: 'sha256' },
  RS384: { family: 'RS', hash: 'sha384' },
  RS512: { family: 'RS', hash: 'sha512' },
  PS256: { family: 'PS', hash: 'sha256' },
  PS384: { family: 'PS', hash: 'sha384' },
  PS512: { family: 'PS', hash: 'sha512' },
  ES256: { family: 'ES', hash: 'sha256', curve: 'prime256v1', signatureBytes: 64 },
  ES384: { family: 'ES', hash: 'sha384', curve: 'secp384r1', signatureBytes: 96 },
  ES512: { family: 'ES', hash: 'sha512', curve: 'secp521r1', signatureBytes: 132 },
};

const DEFAULT_ALG: Readonly<Record<KeyType, JwtAlg>> = {
  'ec-p256': 'ES256',
  'ec-p384': 'ES384',
  'rsa-2048': 'RS256',
};

/**
 * Audiences come from workloads, so they are bounded: a JWT carries them in every request it
 * authorizes, and agents cache tokens per audience set. SPIFFE recommends a single audience; 16
 * leaves room for the odd multi-audience token, and 1 KiB holds any URL-shaped audience.
 */
export const MAX_JWT_AUDIENCES = 16;
export const MAX_JWT_AUDIENCE_BYTES = 1024;
/**
 * Tokens to validate come from workloads and peers. The largest we mint (16 audiences of 1 KiB, a
 * 2 KiB SPIFFE ID, an RSA-4096 signature) stays under 48 KiB once base64url-encoded; 64 KiB refuses
 * only garbage, before any of it is decoded.
 */
export const MAX_JWT_SVID_BYTES = 64 * 1024;

/**
 * Checks a requested audience list: 1 to MAX_JWT_AUDIENCES values, each a non-empty string of at
 * most MAX_JWT_AUDIENCE_BYTES UTF-8 bytes without control characters. Throws ERR_INPUT_INVALID
 * naming the broken limit; every edge that accepts audiences (Workload API, agent API, admin API,
 * mint) calls this one check.
 */
export function checkJwtAudience(audience: readonly unknown[], field = 'audience'): void {
  if (!Array.isArray(audience) || audience.length === 0) {
    throw audienceError(field, 'audience must be specified', 'audience-empty');
  }
  if (audience.length > MAX_JWT_AUDIENCES) {
    throw audienceError(
      field,
      `at most ${MAX_JWT_AUDIENCES} audience values are allowed (got ${audience.length})`,
      'audience-count',
    );
  }
  for (const aud of audience) {
    if (typeof aud !== 'string' || aud === '') {
      throw audienceError(field, 'audience values must be non-empty strings', 'audience-empty');
    }
    const bytes = Buffer.byteLength(aud, 'utf8');
    if (bytes > MAX_JWT_AUDIENCE_BYTES) {
      throw audienceError(
        field,
        `an audience value may be at most ${MAX_JWT_AUDIENCE_BYTES} bytes (got ${bytes}: ${quote(aud, 40)})`,
        'audience-size',
      );
    }
    const unsafe = unsafeCharacterIn(aud);
    if (unsafe !== undefined) {
      throw audienceError(field, `audience ${quote(aud, 40)} contains a ${unsafe}`, 'audience-char');
    }
  }
}

function audienceError(field: string, message: string, reason: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `${field}: ${message}`, { field, reason });
}

export interface MintJwtSvidParams {
  /** The subject; must name a workload (a non-root path). */
  spiffeId: SpiffeId;
  /** At least one; always written as a JSON array, as SPIRE does. */
  audience: readonly string[];
  issuedAtMs: number;
  /** Written in whole seconds (rounded down); must fall at least one second after `issuedAtMs`. */
  expiresAtMs: number;
  /** Private signing key: EC P-256, EC P-384 or RSA ≥ 2048 bits. */
  key: KeyObject;
  /** Key ID under which the matching public key is published in the bundle. */
  kid: string;
  /** Defaults to ES256 for P-256, ES384 for P-384 and RS256 for RSA. RSA keys may also use RS384/512, PS256/384/512. */
  alg?: JwtAlg;
  jti?: string;
}

/** Signs a JWT-SVID: header exactly {alg, kid, typ: "JWT"}; claims sub, aud, exp, iat and jti if given. */
export function mintJwtSvid(params: MintJwtSvidParams): string {
  const { spiffeId, audience, issuedAtMs, expiresAtMs, key, kid, jti } = params;
  if (spiffeId.isTrustDomainId) {
    throw new SigilError(
      'ERR_SPIFFE_ID_INVALID',
      `spiffe_id: ${quote(spiffeId.toString())} must have a path (a trust domain ID cannot name a workload)`,
      { field: 'spiffe_id', reason: 'no-path' },
    );
  }
  checkJwtAudience(audience);
  if (typeof kid !== 'string' || kid === '') throw mintError('kid', 'must be a non-empty string', 'kid');
  if (jti !== undefined && (typeof jti !== 'string' || jti === '')) {
    throw mintError('jti', 'must be a non-empty string when given', 'jti');
  }
  if (!Number.isFinite(issuedAtMs) || !Number.isFinite(expiresAtMs)) {
    throw mintError('issued_at', 'issuedAtMs and expiresAtMs must be finite numbers', 'time');
  }
  const iat = Math.floor(issuedAtMs / 1000);
  const exp = Math.floor(expiresAtMs / 1000);
  if (exp <= iat) {
    throw mintError(
      'expires_at',
      `exp (${exp}) must be after iat (${iat}) in whole seconds`,
      'exp-not-after-iat',
    );
  }
  if (!(key instanceof KeyObject) || key.type !== 'private') {
    throw new SigilError('ERR_KEY_INVALID', 'key: a private KeyObject is needed to sign', { field: 'key' });
  }
  const alg = params.alg ?? DEFAULT_ALG[keyTypeOf(key)];
  if (!JWT_ALGS.includes(alg)) {
    throw new SigilError('ERR_JWT_ALG', `alg: ${quote(alg)} is not a JWT-SVID algorithm`, { field: 'alg' });
  }
  const misfit = keyMisfit(alg, key);
  if (misfit !== undefined)
    throw new SigilError('ERR_JWT_ALG', `alg: ${misfit}`, { field: 'alg', reason: 'key' });

  const header = encodeJson({ alg, kid, typ: 'JWT' });
  const claims = encodeJson({
    sub: spiffeId.toString(),
    aud: [...audience],
    exp,
    iat,
    ...(jti === undefined ? {} : { jti }),
  });
  const signingInput = `${header}.${claims}`;
  const signature = sign(ALGS[alg].hash, Buffer.from(signingInput), cryptoOptions(alg, key));
  return `${signingInput}.${signature.toString('base64url')}`;
}

export interface ValidateJwtSvidOptions {
  /** The audience the validator answers to; the token's `aud` must contain it. */
  audience: string;
  /** The bundle of a trust domain, or undefined when that domain is not trusted. */
  bundleFor: (trustDomain: TrustDomain) => TrustBundle | undefined;
  /** The current time, in milliseconds since the epoch. */
  nowMs: number;
  /** Clock skew tolerated on exp, nbf and iat, in milliseconds. Defaults to 60s, as go-jose. */
  leewayMs?: number;
  /** Narrows the accepted algorithms. Defaults to all nine JWT-SVID algorithms. */
  allowedAlgs?: readonly JwtAlg[];
}

export interface ValidatedJwtSvid {
  readonly spiffeId: SpiffeId;
  /** Every claim of the token, deep-frozen. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Always a list, even when the token carries a single string (as SPIRE reports it). */
  readonly audience: readonly string[];
  readonly expiresAtMs: number;
  readonly kid: string;
}

/**
 * Validates a JWT-SVID. Codes: ERR_JWT_ALG, ERR_BUNDLE_NOT_FOUND, ERR_JWT_KEY_NOT_FOUND,
 * ERR_JWT_SIGNATURE, ERR_JWT_EXPIRED, ERR_JWT_AUDIENCE; ERR_JWT_INVALID for every other malformation.
 * Messages never contain the token, which is a bearer credential.
 */
export function validateJwtSvid(token: string, options: ValidateJwtSvidOptions): ValidatedJwtSvid {
  const { audience, nowMs } = options;
  const leewayMs = options.leewayMs ?? DEFAULT_LEEWAY_MS;
  if (typeof audience !== 'string' || audience === '') {
    throw new SigilError('ERR_INPUT_INVALID', 'audience: must be a non-empty string', { field: 'audience' });
  }
  if (!Number.isFinite(nowMs) || !Number.isFinite(leewayMs) || leewayMs < 0) {
    throw new SigilError('ERR_INPUT_INVALID', 'nowMs and leewayMs must be finite, leewayMs not negative', {
      field: 'nowMs',
    });
  }

  // 1. Size, compact serialization, and the header: alg allow-list, then only alg/kid/typ, typ, kid.
  const tokenBytes = typeof token === 'string' ? Buffer.byteLength(token, 'utf8') : 0;
  if (tokenBytes > MAX_JWT_SVID_BYTES) {
    throw jwtError(
      'ERR_JWT_INVALID',
      `token is ${tokenBytes} bytes, more than the ${MAX_JWT_SVID_BYTES} allowed`,
      'size',
    );
  }
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) {
    throw jwtError('ERR_JWT_INVALID', 'not a compact JWS (expected three dot-separated parts)', 'compact');
  }
  const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
  const headerBytes = decodeBase64Url(headerPart, 'header');
  const claimsBytes = decodeBase64Url(claimsPart, 'claims');
  const signature = decodeBase64Url(signaturePart, 'signature');
  const header = decodeJsonObject(headerBytes, 'header');
  const alg = readAlg(header, options.allowedAlgs ?? JWT_ALGS);
  for (const name of Object.keys(header)) {
    if (!HEADER_MEMBERS.has(name)) {
      throw jwtError(
        'ERR_JWT_INVALID',
        `header member ${quote(name)} is not allowed (only alg, kid, typ)`,
        'header',
      );
    }
  }
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') {
    throw jwtError('ERR_JWT_INVALID', `header typ ${quote(header.typ)} must be "JWT" or "JOSE"`, 'typ');
  }
  const kid = header.kid;
  if (kid === undefined)
    throw jwtError('ERR_JWT_INVALID', 'header is missing the key ID (kid)', 'kid-missing');
  if (typeof kid !== 'string' || kid === '') {
    throw jwtError('ERR_JWT_INVALID', 'header kid must be a non-empty string', 'kid');
  }

  // 2. Unverified claims: sub and exp must be there before anything is looked up.
  const claims = decodeJsonObject(claimsBytes, 'claims');
  const times = readClaimTypes(claims);
  if (claims.sub === undefined || claims.sub === '') {
    throw jwtError('ERR_JWT_INVALID', 'token has no sub claim', 'sub-missing');
  }
  if (times.exp === undefined) throw jwtError('ERR_JWT_INVALID', 'token has no exp claim', 'exp-missing');
  let spiffeId: SpiffeId;
  try {
    spiffeId = parseSpiffeId(claims.sub as string, 'sub');
  } catch (err) {
    throw jwtError('ERR_JWT_INVALID', `sub claim is not a SPIFFE ID: ${(err as Error).message}`, 'sub', err);
  }

  // 3. The key: bundle of sub's trust domain (never another one), then kid, then its fit to alg.
  const td = spiffeId.trustDomain;
  const bundle = options.bundleFor(td);
  if (bundle === undefined || !bundle.trustDomain.equals(td)) {
    throw jwtError('ERR_BUNDLE_NOT_FOUND', `no bundle for trust domain ${quote(td.name)}`, 'bundle');
  }
  const authority = bundle.jwtAuthorities.find((a) => a.kid === kid);
  if (authority === undefined) {
    throw jwtError(
      'ERR_JWT_KEY_NOT_FOUND',
      `no JWT authority with key ID ${quote(kid)} in the bundle of ${quote(td.name)}`,
      'kid',
    );
  }
  const misfit = keyMisfit(alg, authority.publicKey);
  if (misfit !== undefined) throw jwtError('ERR_JWT_ALG', `key ${quote(kid)}: ${misfit}`, 'key');

  // 4. The signature.
  if (!isSignatureValid(alg, authority.publicKey, `${headerPart}.${claimsPart}`, signature)) {
    throw jwtError('ERR_JWT_SIGNATURE', `signature does not verify with key ${quote(kid)}`, 'signature');
  }

  // 5. Time, then audience.
  const expiresAtMs = times.exp * 1000;
  if (nowMs - leewayMs > expiresAtMs) {
    throw jwtError('ERR_JWT_EXPIRED', `token expired (exp ${times.exp}, now ${secondsOf(nowMs)})`, 'expired');
  }
  if (times.nbf !== undefined && nowMs + leewayMs < times.nbf * 1000) {
    throw jwtError(
      'ERR_JWT_INVALID',
      `token is not valid yet (nbf ${times.nbf}, now ${secondsOf(nowMs)})`,
      'nbf',
    );
  }
  if (times.iat !== undefined && nowMs + leewayMs < times.iat * 1000) {
    throw jwtError(
      'ERR_JWT_INVALID',
      `token was issued in the future (iat ${times.iat}, now ${secondsOf(nowMs)})`,
      'iat',
    );
  }
  const audiences =
    claims.aud === undefined ? [] : typeof claims.aud === 'string' ? [claims.aud] : (claims.aud as string[]);
  if (audiences.length === 0) throw jwtError('ERR_JWT_AUDIENCE', 'token has no aud claim', 'aud-missing');
  if (!audiences.includes(audience)) {
    throw jwtError(
      'ERR_JWT_AUDIENCE',
      `audience ${quote(audience)} is not in the token's aud ${quote(audiences)}`,
      'aud',
    );
  }

  return Object.freeze({
    spiffeId,
    claims: deepFreeze(claims),
    audience: Object.freeze([...audiences]),
    expiresAtMs,
    kid,
  });
}

// ---- parsing ------------------------------------------------------------------------------------

function decodeBase64Url(part: string, name: string): Buffer {
  const bytes = Buffer.from(part, 'base64url');
  // Re-encoding must give the same text: this refuses padding, other alphabets, stray characters and
  // non-canonical trailing bits, any of which would let one token be written several ways.
  if (part === '' || !/^[A-Za-z0-9_-]+$/.test(part) || bytes.toString('base64url') !== part) {
    throw jwtError('ERR_JWT_INVALID', `${name} is not unpadded base64url`, 'base64url');
  }
  return bytes;
}

function decodeJsonObject(bytes: Buffer, name: 'header' | 'claims'): Record<string, unknown> {
  let text: string;
  try {
    // fatal: Buffer#toString would quietly turn bad bytes into U+FFFD. ignoreBOM keeps a BOM, which JSON refuses.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (err) {
    throw jwtError('ERR_JWT_INVALID', `${name} is not UTF-8`, 'utf8', err);
  }
  const value = parseJsonStrict(text, 'ERR_JWT_INVALID', `jwt-svid: ${name}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw jwtError('ERR_JWT_INVALID', `${name} must be a JSON object`, name);
  }
  return value as Record<string, unknown>;
}

function readAlg(header: Record<string, unknown>, allowed: readonly JwtAlg[]): JwtAlg {
  const alg = header.alg;
  if (alg === undefined) throw jwtError('ERR_JWT_INVALID', 'header is missing alg', 'alg-missing');
  if (typeof alg !== 'string') throw jwtError('ERR_JWT_INVALID', 'header alg must be a string', 'alg');
  if (!JWT_ALGS.includes(alg as JwtAlg) || !allowed.includes(alg as JwtAlg)) {
    throw jwtError(
      'ERR_JWT_ALG',
      `algorithm ${quote(alg)} is not allowed (allowed: ${allowed.join(', ')})`,
      'alg',
    );
  }
  return alg as JwtAlg;
}

/** Checks the registered claims' JSON types (as go-jose does while decoding) and returns the times in seconds. */
function readClaimTypes(claims: Record<string, unknown>): { exp?: number; nbf?: number; iat?: number } {
  if (claims.sub !== undefined && typeof claims.sub !== 'string') {
    throw jwtError('ERR_JWT_INVALID', 'sub claim must be a string', 'sub');
  }
  const aud = claims.aud;
  if (
    aud !== undefined &&
    typeof aud !== 'string' &&
    !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))
  ) {
    throw jwtError('ERR_JWT_INVALID', 'aud claim must be a string or an array of strings', 'aud-type');
  }
  const times: { exp?: number; nbf?: number; iat?: number } = {};
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    const value = claims[name];
    if (value === undefined) continue;
    // 1e400 parses as Infinity; a NumericDate must be a real number of seconds.
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw jwtError('ERR_JWT_INVALID', `${name} claim must be a number of seconds`, `${name}-type`);
    }
    // go-jose keeps whole seconds of a NumericDate; so do we, so a token is judged the same way.
    times[name] = Math.trunc(value);
  }
  return times;
}

// ---- keys and signatures ------------------------------------------------------------------------

/** Why `key` cannot be used with `alg`, or undefined when it can. */
function keyMisfit(alg: JwtAlg, key: KeyObject): string | undefined {
  const spec = ALGS[alg];
  if (spec.family === 'ES') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (key.asymmetricKeyType === 'ec' && curve === spec.curve) return undefined;
    return `${alg} needs an EC ${spec.curve} key (found ${describeKey(key)})`;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType === 'rsa' && bits >= MIN_RSA_BITS) return undefined;
  return `${alg} needs an RSA key of at least ${MIN_RSA_BITS} bits (found ${describeKey(key)})`;
}

function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return `EC ${details?.namedCurve}`;
  if (key.asymmetricKeyType === 'rsa') return `RSA ${details?.modulusLength} bits`;
  return String(key.asymmetricKeyType);
}

function cryptoOptions(alg: JwtAlg, key: KeyObject) {
  switch (ALGS[alg].family) {
    case 'ES':
      // JWS carries ECDSA signatures as raw r||s (RFC 7518 §3.4), not DER.
      return { key, dsaEncoding: 'ieee-p1363' as const };
    case 'PS':
      // RFC 7518 §3.5: the salt is as long as the hash.
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
    case 'RS':
      return { key, padding: constants.RSA_PKCS1_PADDING };
  }
}

function isSignatureValid(alg: JwtAlg, key: KeyObject, signingInput: string, signature: Buffer): boolean {
  const spec = ALGS[alg];
  if (spec.signatureBytes !== undefined && signature.length !== spec.signatureBytes) return false;
  try {
    return verify(spec.hash, Buffer.from(signingInput), cryptoOptions(alg, key), signature);
  } catch {
    // OpenSSL throws on some malformed signatures instead of returning false; either way it does not verify.
    return false;
  }
}

// ---- small helpers ------------------------------------------------------------------------------

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function secondsOf(ms: number): number {
  return Math.floor(ms / 1000);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function mintError(field: string, rule: string, reason: string): SigilError {
  return new SigilError('ERR_JWT_INVALID', `jwt-svid: ${field} ${rule}`, { field, reason });
}

function jwtError(code: SigilErrorCode, rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError(code, `jwt-svid: ${rule}`, { reason, cause });
}
