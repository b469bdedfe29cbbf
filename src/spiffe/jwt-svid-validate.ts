// Validating a JWT-SVID against the bundle of the subject's trust domain, in go-spiffe's order, so
// a token fails here the way it fails there. Compact JWS only: no JWE, no JSON serialization, no
// key fetching, no clock (the caller passes the time).
import { parseJsonStrict, type TrustBundle } from './bundle.js';
import { quote, SigilError, type SigilErrorCode } from './errors.js';
import { parseSpiffeId, type SpiffeId, type TrustDomain } from './id.js';
import { isSignatureValid, JWT_ALGS, type JwtAlg, keyMisfit } from './jwt-algs.js';

/** go-jose's default leeway, which go-spiffe and SPIRE inherit: 1 minute on exp, nbf and iat. */
const DEFAULT_LEEWAY_MS = 60_000;
const HEADER_MEMBERS: ReadonlySet<string> = new Set(['alg', 'kid', 'typ']);
/**
 * Tokens to validate come from workloads and peers. The largest we mint (16 audiences of 1 KiB, a
 * 2 KiB SPIFFE ID, an RSA-4096 signature) stays under 48 KiB once base64url-encoded; 64 KiB refuses
 * only garbage, before any of it is decoded.
 */
export const MAX_JWT_SVID_BYTES = 64 * 1024;

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

// ---- small helpers ------------------------------------------------------------------------------

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

function jwtError(code: SigilErrorCode, rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError(code, `jwt-svid: ${rule}`, { reason, cause });
}
