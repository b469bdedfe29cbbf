// The nine JWT-SVID algorithms and what each needs of a key: the one table that minting and
// validating share, so an algorithm cannot be signed with a key it would not verify with.
import { constants, type KeyObject, sign, verify } from 'node:crypto';
import type { KeyType } from './keys.js';

export type JwtAlg = 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'ES512' | 'PS256' | 'PS384' | 'PS512';

/** The JWT-SVID spec's list; `none`, HS* and EdDSA are refused whatever the caller allows. */
export const JWT_ALGS: readonly JwtAlg[] = [
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

export const DEFAULT_ALG: Readonly<Record<KeyType, JwtAlg>> = {
  'ec-p256': 'ES256',
  'ec-p384': 'ES384',
  'rsa-2048': 'RS256',
};

/** Signs `signingInput` with `alg`, in JWS's signature encoding (raw r||s for ECDSA). */
export function signJws(alg: JwtAlg, key: KeyObject, signingInput: string): Buffer {
  return sign(ALGS[alg].hash, Buffer.from(signingInput), cryptoOptions(alg, key));
}

/** Why `key` cannot be used with `alg`, or undefined when it can. */
export function keyMisfit(alg: JwtAlg, key: KeyObject): string | undefined {
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

export function isSignatureValid(
  alg: JwtAlg,
  key: KeyObject,
  signingInput: string,
  signature: Buffer,
): boolean {
  const spec = ALGS[alg];
  if (spec.signatureBytes !== undefined && signature.length !== spec.signatureBytes) return false;
  try {
    return verify(spec.hash, Buffer.from(signingInput), cryptoOptions(alg, key), signature);
  } catch {
    // OpenSSL throws on some malformed signatures instead of returning false; either way it does not verify.
    return false;
  }
}
