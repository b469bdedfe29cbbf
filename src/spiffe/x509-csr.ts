// Reading PKCS#10 CSRs: the requester proves it holds the private key by the self-signature, and
// only the key is kept; subject and requested extensions are ignored, since the CA alone decides
// what an SVID says.
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import {
  DerTag,
  type DerTlv,
  derOid,
  expectTlv,
  readChildren,
  readOid,
  readSmallInteger,
  readTlv,
  readUnsignedInteger,
  tlvBytes,
  tlvValue,
} from './der.js';
import { isSigilError, quote, SigilError } from './errors.js';
import { type KeyType, keyTypeOf } from './keys.js';
import { decodePem } from './pem.js';
import { messageOf } from './x509-certificate.js';

interface SignatureAlgorithm {
  readonly name: string;
  readonly family: 'ec' | 'rsa';
  readonly hash: 'sha256' | 'sha384' | 'sha512';
}

/** Signature algorithms accepted on CSRs, keyed by the hex of the OID's value octets. */
const CSR_SIGNATURE_ALGORITHMS: ReadonlyMap<string, SignatureAlgorithm> = new Map([
  [oidHex('1.2.840.10045.4.3.2'), { name: 'ecdsa-with-SHA256', family: 'ec', hash: 'sha256' }],
  [oidHex('1.2.840.10045.4.3.3'), { name: 'ecdsa-with-SHA384', family: 'ec', hash: 'sha384' }],
  [oidHex('1.2.840.10045.4.3.4'), { name: 'ecdsa-with-SHA512', family: 'ec', hash: 'sha512' }],
  [oidHex('1.2.840.113549.1.1.11'), { name: 'sha256WithRSAEncryption', family: 'rsa', hash: 'sha256' }],
  [oidHex('1.2.840.113549.1.1.12'), { name: 'sha384WithRSAEncryption', family: 'rsa', hash: 'sha384' }],
  [oidHex('1.2.840.113549.1.1.13'), { name: 'sha512WithRSAEncryption', family: 'rsa', hash: 'sha512' }],
]);

/** SPKI header up to the uncompressed point (`04 || X || Y`) for id-ecPublicKey with P-256 / P-384. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_SPKI_LENGTH = P256_SPKI_PREFIX.length + 1 + 2 * 32;
const P384_SPKI_PREFIX = Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex');
const P384_SPKI_LENGTH = P384_SPKI_PREFIX.length + 1 + 2 * 48;

/** rsaEncryption AlgorithmIdentifier with its NULL parameters, as canonical RSA SPKIs carry it. */
const RSA_SPKI_ALGORITHM = Buffer.from('300d06092a864886f70d0101010500', 'hex');
/** A 2048-4096 bit RSA SPKI has a `30 82 xx xx` header, so the AlgorithmIdentifier starts at 4. */
const RSA_SPKI_ALGORITHM_AT = 4;

export interface ParsedCsr {
  readonly publicKey: KeyObject;
  /** The CSR's SubjectPublicKeyInfo, ready for mintX509Svid's `publicKey`. */
  readonly spkiDer: Buffer;
  readonly keyType: KeyType;
}

/**
 * Reads a PKCS#10 CSR (DER, or PEM "CERTIFICATE REQUEST") and verifies its self-signature, which
 * proves the requester holds the private key. Only the key is used: subject and requested
 * extensions are ignored, since the CA decides the SVID's content. Throws ERR_CSR_INVALID.
 */
export function parseCsr(input: Buffer | string): ParsedCsr {
  const der = csrDer(input);
  let info: DerTlv;
  let spkiTlv: DerTlv;
  let algorithm: SignatureAlgorithm;
  let signature: Buffer;
  try {
    const outer = expectTlv(der, 0, DerTag.SEQUENCE, 'CertificationRequest');
    if (outer.end !== der.length)
      throw csrError(`${der.length - outer.end} trailing bytes after the CSR`, 'trailing');
    info = expectTlv(der, outer.valueStart, DerTag.SEQUENCE, 'CertificationRequestInfo', outer.end);
    const algTlv = expectTlv(der, info.end, DerTag.SEQUENCE, 'signatureAlgorithm', outer.end);
    const sigTlv = expectTlv(der, algTlv.end, DerTag.BIT_STRING, 'signature', outer.end);
    if (sigTlv.end !== outer.end) throw csrError('unexpected data after the signature', 'trailing');

    const version = expectTlv(der, info.valueStart, DerTag.INTEGER, 'version', info.end);
    const versionValue = readSmallInteger(der, version);
    if (versionValue !== 0)
      throw csrError(`unsupported version ${versionValue + 1} (only v1, encoded 0)`, 'version');
    const subject = expectTlv(der, version.end, DerTag.SEQUENCE, 'subject', info.end);
    spkiTlv = expectTlv(der, subject.end, DerTag.SEQUENCE, 'subjectPKInfo', info.end);

    const oid = expectTlv(der, algTlv.valueStart, DerTag.OID, 'signature algorithm OID', algTlv.end);
    const found = CSR_SIGNATURE_ALGORITHMS.get(tlvValue(der, oid).toString('hex'));
    if (!found) {
      throw csrError(
        `unsupported signature algorithm ${readOid(der, oid)} (use ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512)`,
        'algorithm',
      );
    }
    algorithm = found;
    if (sigTlv.end - sigTlv.valueStart < 2 || der[sigTlv.valueStart] !== 0) {
      throw csrError('signature bit string is empty or not whole octets', 'signature');
    }
    signature = der.subarray(sigTlv.valueStart + 1, sigTlv.end);
  } catch (err) {
    if (isSigilError(err, 'ERR_CSR_INVALID')) throw err;
    throw csrError(`truncated or malformed: ${messageOf(err)}`, 'malformed', err);
  }

  // Copy: the key outlives the request buffer, which may be a slice of a large gRPC frame.
  const spkiDer = Buffer.from(tlvBytes(der, spkiTlv));
  const curveKeyType = namedCurveKeyType(spkiDer);
  let publicKey: KeyObject;
  try {
    publicKey = importSpki(spkiDer, curveKeyType);
  } catch (err) {
    throw csrError('public key is not a readable SubjectPublicKeyInfo', 'key', err);
  }
  let keyType: KeyType;
  try {
    keyType = curveKeyType ?? keyTypeOf(publicKey);
  } catch (err) {
    throw csrError(`unsupported key: ${messageOf(err)}`, 'key', err);
  }
  const keyFamily = keyType === 'rsa-2048' ? 'rsa' : 'ec';
  if (algorithm.family !== keyFamily) {
    throw csrError(`signature algorithm ${algorithm.name} does not fit its ${keyType} key`, 'algorithm');
  }
  const signedBytes = der.subarray(info.start, info.end);
  let isValid: boolean;
  try {
    isValid = verify(algorithm.hash, signedBytes, publicKey, signature);
  } catch (err) {
    throw csrError('signature is malformed', 'signature', err);
  }
  if (!isValid) throw csrError('signature does not verify with the CSR public key', 'signature');
  return { publicKey, spkiDer, keyType };
}

/**
 * A KeyObject for an SPKI. Node 20's OpenSSL 3.0 decodes DER SPKI through its generic decoder
 * machinery, which profiling showed costs more than the CSR's sign+verify together (~110 µs for
 * P-256, far more for RSA). The same key as a JWK skips the decoder and is 2x (EC) to 20x (RSA)
 * faster. Validation is not weakened: EC JWK import runs OpenSSL's full public-key check (on the
 * curve, right order), stricter than the DER path, and the signature is verified after either way.
 * Only the one canonical encoding of each key takes the JWK route, so `spkiDer` (which goes into the
 * certificate) is exactly the key imported; anything unusual goes through the DER decoder.
 */
function importSpki(spkiDer: Buffer, curveKeyType: KeyType | undefined): KeyObject {
  if (curveKeyType !== undefined) {
    const size = curveKeyType === 'ec-p256' ? 32 : 48;
    const point = spkiDer.length - (1 + 2 * size);
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: curveKeyType === 'ec-p256' ? 'P-256' : 'P-384',
        x: spkiDer.subarray(point + 1, point + 1 + size).toString('base64url'),
        y: spkiDer.subarray(point + 1 + size).toString('base64url'),
      },
      format: 'jwk',
    });
  }
  const rsa = canonicalRsaSpki(spkiDer);
  if (rsa !== undefined) {
    return createPublicKey({
      key: { kty: 'RSA', n: rsa.modulus.toString('base64url'), e: rsa.exponent.toString('base64url') },
      format: 'jwk',
    });
  }
  return createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
}

/** Modulus and exponent of an rsaEncryption SPKI in canonical DER, or undefined for any other shape. */
function canonicalRsaSpki(spkiDer: Buffer): { modulus: Buffer; exponent: Buffer } | undefined {
  if (
    !spkiDer
      .subarray(RSA_SPKI_ALGORITHM_AT, RSA_SPKI_ALGORITHM_AT + RSA_SPKI_ALGORITHM.length)
      .equals(RSA_SPKI_ALGORITHM)
  ) {
    return undefined;
  }
  try {
    const outer = readTlv(spkiDer);
    const algorithm = readTlv(spkiDer, outer.valueStart, outer.end);
    const bits = expectTlv(spkiDer, algorithm.end, DerTag.BIT_STRING, 'subjectPublicKey', outer.end);
    if (outer.end !== spkiDer.length || bits.end !== outer.end || spkiDer[bits.valueStart] !== 0)
      return undefined;
    const key = expectTlv(spkiDer, bits.valueStart + 1, DerTag.SEQUENCE, 'RSAPublicKey', bits.end);
    const [n, e, ...rest] = readChildren(spkiDer, key);
    if (key.end !== bits.end || n === undefined || e === undefined || rest.length > 0) return undefined;
    return { modulus: readUnsignedInteger(spkiDer, n), exponent: readUnsignedInteger(spkiDer, e) };
  } catch {
    // Not canonical: importSpki hands these bytes to the DER decoder, which reports what is wrong.
    return undefined;
  }
}

/**
 * The key type of an uncompressed P-256/P-384 SPKI in its one canonical encoding, read from the bytes:
 * asking the KeyObject (asymmetricKeyDetails) costs a native round trip per CSR. Anything else is
 * left to keyTypeOf. The KeyObject was made from these same bytes, so the two cannot disagree.
 */
function namedCurveKeyType(spkiDer: Buffer): KeyType | undefined {
  if (
    spkiDer.length === P256_SPKI_LENGTH &&
    spkiDer.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)
  ) {
    return 'ec-p256';
  }
  if (
    spkiDer.length === P384_SPKI_LENGTH &&
    spkiDer.subarray(0, P384_SPKI_PREFIX.length).equals(P384_SPKI_PREFIX)
  ) {
    return 'ec-p384';
  }
  return undefined;
}

function csrDer(input: Buffer | string): Buffer {
  let text: string | undefined;
  if (typeof input === 'string') text = input;
  else if (!Buffer.isBuffer(input)) throw csrError('expected a Buffer (DER) or a PEM string', 'type');
  else if (input.length > 0 && input[0] === DerTag.SEQUENCE) return input;
  else if (input.subarray(0, 64).toString('latin1').includes('-----BEGIN ')) text = input.toString('utf8');
  else throw csrError('input is neither DER (starts with a SEQUENCE) nor PEM', 'format');
  let blocks: ReturnType<typeof decodePem>;
  try {
    blocks = decodePem(text, 'csr');
  } catch (err) {
    throw csrError(`PEM is unreadable: ${messageOf(err)}`, 'format', err);
  }
  const csr = blocks.filter(
    (b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST',
  );
  if (csr.length !== 1) {
    const labels = blocks.map((b) => quote(b.label)).join(', ') || 'none';
    throw csrError(`expected one PEM "CERTIFICATE REQUEST" block (found ${labels})`, 'format');
  }
  return csr[0]!.der;
}

function csrError(rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError('ERR_CSR_INVALID', `csr: ${rule}`, { field: 'csr', reason, cause });
}

function oidHex(dotted: string): string {
  const der = derOid(dotted);
  return tlvValue(der, readTlv(der)).toString('hex');
}
