// Signing keys: the key types Sigil supports and the node:crypto calls that go with each.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { quote, SigilError } from './errors.js';

export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export function isKeyType(value: unknown): value is KeyType {
  return typeof value === 'string' && (KEY_TYPES as readonly string[]).includes(value);
}

export function generateKey(keyType: KeyType): KeyObject {
  switch (keyType) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  }
}

/** The key type of a private or public key, or an error naming what was found. */
export function keyTypeOf(key: KeyObject): KeyType {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ec-p256';
    if (curve === 'secp384r1') return 'ec-p384';
    throw new SigilError('ERR_KEY_INVALID', `unsupported EC curve ${quote(curve)} (use P-256 or P-384)`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits >= 2048) return 'rsa-2048';
    throw new SigilError('ERR_KEY_INVALID', `RSA key of ${bits} bits is too small (at least 2048)`);
  }
  throw new SigilError('ERR_KEY_INVALID', `unsupported key type ${quote(key.asymmetricKeyType)}`);
}

/** Hash used with a key for X.509 and JWT signatures: SHA-384 for P-384, SHA-256 otherwise. */
export function hashFor(keyType: KeyType): 'sha256' | 'sha384' {
  return keyType === 'ec-p384' ? 'sha384' : 'sha256';
}

/** Reads a PKCS#8 / SEC1 / PKCS#1 private key from PEM or DER, with a clear error when it is not one. */
export function parsePrivateKey(input: string | Buffer, field = 'key'): KeyObject {
  try {
    const key =
      typeof input === 'string'
        ? createPrivateKey({ key: input, format: 'pem' })
        : createPrivateKey({ key: input, format: 'der', type: 'pkcs8' });
    keyTypeOf(key);
    return key;
  } catch (err) {
    if (err instanceof SigilError) throw err;
    throw new SigilError(
      'ERR_KEY_INVALID',
      `${field}: not a readable private key (PEM or PKCS#8 DER expected)`,
      {
        field,
        cause: err,
      },
    );
  }
}

/** PKCS#8 DER, the form the Workload API and our key files use. */
export function exportPkcs8Der(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' });
}
