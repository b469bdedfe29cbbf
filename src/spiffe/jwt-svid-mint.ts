// Minting a JWT-SVID (spiffe-facts.md §3): header exactly {alg, kid, typ: "JWT"}, claims sub, aud,
// exp, iat and jti if given, as SPIRE emits them. node:crypto only; the caller passes the time.
import { KeyObject } from 'node:crypto';
import { quote, SigilError } from './errors.js';
import type { SpiffeId } from './id.js';
import { DEFAULT_ALG, JWT_ALGS, type JwtAlg, keyMisfit, signJws } from './jwt-algs.js';
import { checkJwtAudience } from './jwt-audience.js';
import { keyTypeOf } from './keys.js';

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
  const signature = signJws(alg, key, signingInput);
  return `${signingInput}.${signature.toString('base64url')}`;
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function mintError(field: string, rule: string, reason: string): SigilError {
  return new SigilError('ERR_JWT_INVALID', `jwt-svid: ${field} ${rule}`, { field, reason });
}
