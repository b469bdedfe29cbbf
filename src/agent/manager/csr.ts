// PKCS#10 certificate signing requests for SVIDs whose keys the agent generates. The key never leaves
// the node: the server sees only the public key and a self-signature proving possession. The subject
// is empty and no extensions are requested, because the server decides the SVID's content from the
// entry (parseCsr ignores both). Hand-encoded with src/spiffe/der.ts: one sign per CSR, no ASN.1 library.
import { createPublicKey, type KeyObject, sign } from 'node:crypto';
import { derBitString, derContext, derInteger, derSequence } from '../../spiffe/der.js';
import { SigilError } from '../../spiffe/errors.js';
import { generateKey, keyTypeOf } from '../../spiffe/keys.js';

/** AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758: no parameters). */
const ECDSA_WITH_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');
/** An empty Name: the SVID's identity is its URI SAN, which the server takes from the entry. */
const EMPTY_NAME = derSequence();
/** `[0] IMPLICIT SET OF Attribute`, present but empty, as RFC 2986 requires the field. */
const NO_ATTRIBUTES = derContext(0, true);

export interface SvidKeyRequest {
  /** The new private key (P-256), kept by the agent. */
  readonly key: KeyObject;
  /** Its SubjectPublicKeyInfo DER, to check the returned leaf carries this key. */
  readonly spkiDer: Buffer;
  /** PKCS#10 DER for SvidSigner.signX509Svids. */
  readonly csr: Buffer;
}

/** A fresh P-256 key and a CSR for it. */
export function createSvidKeyRequest(): SvidKeyRequest {
  const key = generateKey('ec-p256');
  const spkiDer = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return { key, spkiDer, csr: createCsr(key, spkiDer) };
}

/** A PKCS#10 CSR signed by `key`, which must be a P-256 private key (the SVID key type we mint). */
export function createCsr(key: KeyObject, spkiDer?: Buffer): Buffer {
  if (key.type !== 'private' || keyTypeOf(key) !== 'ec-p256') {
    throw new SigilError('ERR_KEY_INVALID', 'csr: the SVID key must be a P-256 private key', {
      field: 'key',
    });
  }
  const spki = spkiDer ?? createPublicKey(key).export({ type: 'spki', format: 'der' });
  const info = derSequence(derInteger(0), EMPTY_NAME, spki, NO_ATTRIBUTES);
  // node:crypto emits ECDSA signatures DER-encoded (dsaEncoding 'der'), the form X.509 carries.
  return derSequence(info, ECDSA_WITH_SHA256, derBitString(sign('sha256', info, key)));
}
