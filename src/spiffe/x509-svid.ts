// X509-SVIDs (spiffe-facts.md §2): minting leaves, reading CSRs, verifying chains, describing certs.
// Minting is the CA's hot path, so it skips general ASN.1 libraries: everything constant for a
// signing CA is encoded once in prepareIssuer, and each leaf is a few buffer concatenations plus one
// crypto.sign. CA certificates (rare, async) are made in x509-authority.ts with @peculiar/x509.
// Verification leans on node:crypto for signatures and on our DER reader for the SPIFFE checks.
import {
  createHash,
  createPublicKey,
  hash,
  type KeyObject,
  randomFillSync,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import {
  DerTag,
  type DerTlv,
  derBitString,
  derContext,
  derInteger,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derTime,
  derUtf8String,
  expectTlv,
  readChildren,
  readOid,
  readSmallInteger,
  readTime,
  readTlv,
  readUnsignedInteger,
  tlvBytes,
  tlvValue,
} from './der.js';
import { isSigilError, quote, SigilError } from './errors.js';
import { parseSpiffeId, type SpiffeId, type TrustDomain } from './id.js';
import { hashFor, type KeyType, keyTypeOf } from './keys.js';
import { decodePem } from './pem.js';

// ---------------------------------------------------------------------------------------------
// Constants: OIDs and the DER fragments every leaf shares

const OID_KEY_USAGE = '2.5.29.15';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SUBJECT_KEY_ID = '2.5.29.14';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
/** Extensions this module understands; any other critical one makes a cert unusable (RFC 5280 §4.2). */
const KNOWN_EXTENSIONS = new Set([
  OID_KEY_USAGE,
  OID_BASIC_CONSTRAINTS,
  OID_SUBJECT_ALT_NAME,
  OID_EXT_KEY_USAGE,
  OID_SUBJECT_KEY_ID,
  OID_AUTHORITY_KEY_ID,
]);

/** keyUsage named bits as masks over the first two value octets (bit 0 is the MSB of the first). */
const KU_DIGITAL_SIGNATURE = 0x8000;
const KU_KEY_CERT_SIGN = 0x0400;
const KU_CRL_SIGN = 0x0200;

/** OID encodings by dotted form: extension() runs per leaf, and encoding an OID each time showed in profiles. */
const OID_DER = new Map<string, Buffer>();
const CRITICAL_TRUE = Buffer.from([DerTag.BOOLEAN, 1, 0xff]);

/** `[0] EXPLICIT INTEGER 2`: X.509 v3. */
const VERSION_V3 = Buffer.from('a003020102', 'hex');
/** Critical keyUsage digitalSignature+keyEncipherment+keyAgreement (`03 02 03 A8`), SPIRE's leaf default. */
const EXT_KEY_USAGE_LEAF = extension(OID_KEY_USAGE, true, Buffer.from('030203a8', 'hex'));
/** Critical basicConstraints with cA=false, which DER encodes as an empty SEQUENCE (`30 00`). */
const EXT_BASIC_CONSTRAINTS_LEAF = extension(OID_BASIC_CONSTRAINTS, true, Buffer.from('3000', 'hex'));
/** serverAuth + clientAuth, not critical: TLS stacks (Node, BoringSSL) enforce EKU, so both are needed. */
const EXT_EXT_KEY_USAGE_LEAF = extension(
  OID_EXT_KEY_USAGE,
  false,
  derSequence(derOid('1.3.6.1.5.5.7.3.1'), derOid('1.3.6.1.5.5.7.3.2')),
);
/** The `O=Sigil` RDN every leaf subject starts with. */
const RDN_ORGANIZATION = derSet(derSequence(derOid('2.5.4.10'), derUtf8String('Sigil')));
const OID_COMMON_NAME = derOid('2.5.4.3');

/** AlgorithmIdentifier DER for each CA key type (RFC 5758 for ECDSA: no parameters; RFC 4055 for RSA: NULL). */
const SIGNATURE_ALGORITHMS: Readonly<Record<KeyType, Buffer>> = {
  'ec-p256': Buffer.from('300a06082a8648ce3d040302', 'hex'),
  'ec-p384': Buffer.from('300a06082a8648ce3d040303', 'hex'),
  'rsa-2048': Buffer.from('300d06092a864886f70d01010b0500', 'hex'),
};

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

/** RFC 5280 caps serials at 20 octets. */
const MAX_SERIAL_BYTES = 20;
/** 128 random bits: unguessable, and the top bit is cleared so the INTEGER needs no sign octet. */
const RANDOM_SERIAL_BYTES = 16;
/** Random serials are cut from a pooled fill: one getrandom() per 256 leaves instead of one per leaf. */
const SERIAL_POOL_BYTES = RANDOM_SERIAL_BYTES * 256;
/** RFC 1035 limit on a whole DNS name and on one label. */
const MAX_DNS_NAME_CHARS = 253;
const MAX_DNS_LABEL_CHARS = 63;

// ---------------------------------------------------------------------------------------------
// Minting

/**
 * Everything constant for one signing CA, computed once by prepareIssuer so each leaf only encodes
 * what differs. Make one with prepareIssuer; the fields are read-only facts about the CA.
 */
export interface X509Issuer {
  /** The CA certificate the leaves chain to. */
  readonly certDer: Buffer;
  readonly keyType: KeyType;
  /** Leaves are capped at this time: no SVID may outlive its signer. */
  readonly notAfterMs: number;
  /** The CA's Subject Key Identifier, which becomes each leaf's Authority Key Identifier. */
  readonly subjectKeyId: Buffer;
  /** @internal the CA subject Name DER, copied verbatim as each leaf's issuer */
  readonly issuerNameDer: Buffer;
  /** @internal AlgorithmIdentifier DER for the CA key */
  readonly signatureAlgorithmDer: Buffer;
  /** @internal the complete AKI extension DER */
  readonly authorityKeyIdExtensionDer: Buffer;
  /** @internal */
  readonly hash: 'sha256' | 'sha384';
  /** @internal */
  readonly key: KeyObject;
}

export interface MintX509SvidParams {
  /** Must have a non-root path: a trust domain ID cannot name a workload. */
  readonly spiffeId: SpiffeId;
  /**
   * The workload's public key: a KeyObject (its type is checked), or SPKI DER already vetted by
   * parseCsr (`parseCsr(...).spkiDer`; only its SPKI shape is checked again here).
   */
  readonly publicKey: KeyObject | Buffer;
  /** DNS SANs; the first also becomes the subject CN. Each must be an RFC 1123 name, `*.` allowed. */
  readonly dnsNames?: readonly string[];
  /** Already backdated by the caller. Truncated to whole seconds. */
  readonly notBeforeMs: number;
  /** Capped at the issuer's notAfter. Truncated to whole seconds. */
  readonly notAfterMs: number;
  /** Unsigned big-endian serial, 1-20 octets, not zero. Defaults to 128 random bits. */
  readonly serial?: Buffer;
}

/**
 * Precomputes the per-CA parts of every leaf. Throws ERR_INPUT_INVALID when the certificate is not a
 * usable CA (unreadable, cA=false, no keyCertSign) and ERR_KEY_INVALID when the key is not its key.
 */
export function prepareIssuer(caCertDer: Buffer, caKey: KeyObject): X509Issuer {
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(caCertDer);
  } catch (err) {
    throw new SigilError('ERR_INPUT_INVALID', `x509svid: CA certificate is not readable: ${messageOf(err)}`, {
      field: 'caCert',
      cause: err,
    });
  }
  const constraints = basicConstraintsOf(cert);
  if (!constraints.isCa) {
    throw new SigilError('ERR_INPUT_INVALID', 'x509svid: CA certificate has cA=false, it cannot sign SVIDs', {
      field: 'caCert',
      reason: 'not-ca',
    });
  }
  const keyUsage = keyUsageOf(cert);
  if (keyUsage !== null && (keyUsage & KU_KEY_CERT_SIGN) === 0) {
    throw new SigilError('ERR_INPUT_INVALID', 'x509svid: CA certificate lacks the keyCertSign key usage', {
      field: 'caCert',
      reason: 'no-key-cert-sign',
    });
  }
  if (caKey.type !== 'private') {
    throw new SigilError('ERR_KEY_INVALID', 'x509svid: the CA key must be a private key', { field: 'caKey' });
  }
  const keyType = keyTypeOf(caKey);
  const publicSpki = createPublicKey(caKey).export({ type: 'spki', format: 'der' });
  if (!publicSpki.equals(cert.spkiDer)) {
    throw new SigilError('ERR_KEY_INVALID', 'x509svid: the CA key does not match the CA certificate', {
      field: 'caKey',
      reason: 'key-mismatch',
    });
  }
  const ski = cert.extensions.get(OID_SUBJECT_KEY_ID);
  const subjectKeyId = ski
    ? Buffer.from(readOctetString(ski.value))
    : keyIdentifier(spkiKeyBits(cert.spkiDer));
  return Object.freeze({
    certDer: Buffer.from(caCertDer),
    keyType,
    notAfterMs: cert.notAfterMs,
    subjectKeyId,
    issuerNameDer: Buffer.from(cert.subjectDer),
    signatureAlgorithmDer: SIGNATURE_ALGORITHMS[keyType],
    authorityKeyIdExtensionDer: extension(
      OID_AUTHORITY_KEY_ID,
      false,
      derSequence(derContext(0, false, subjectKeyId)),
    ),
    hash: hashFor(keyType),
    key: caKey,
  });
}

/**
 * A DER workload X509-SVID for `params`, signed by `issuer` (content per spiffe-facts.md §2.1).
 * Throws ERR_X509_SVID_INVALID for a root-path ID or an empty validity window (after capping),
 * ERR_INPUT_INVALID for a bad DNS name, serial or SPKI, ERR_KEY_INVALID for an unsupported key.
 */
export function mintX509Svid(params: MintX509SvidParams, issuer: X509Issuer): Buffer {
  const { spiffeId } = params;
  if (spiffeId.isTrustDomainId) {
    throw new SigilError(
      'ERR_X509_SVID_INVALID',
      `x509svid: SPIFFE ID "${spiffeId}" has no path; a workload SVID needs one (e.g. "${spiffeId}/web")`,
      { field: 'spiffe_id', reason: 'no-path' },
    );
  }
  const dnsNames = params.dnsNames ?? [];
  for (let i = 0; i < dnsNames.length; i++) checkDnsName(dnsNames[i]!, `dns_names[${i}]`);
  const spki = subjectPublicKeyInfo(params.publicKey);
  const notBeforeMs = Math.floor(params.notBeforeMs / 1000) * 1000;
  const notAfterMs = Math.floor(Math.min(params.notAfterMs, issuer.notAfterMs) / 1000) * 1000;
  if (!Number.isFinite(notBeforeMs) || !Number.isFinite(notAfterMs) || notAfterMs <= notBeforeMs) {
    const capped =
      params.notAfterMs > issuer.notAfterMs ? ` (capped at the issuer's ${iso(issuer.notAfterMs)})` : '';
    throw new SigilError(
      'ERR_X509_SVID_INVALID',
      `x509svid: validity is empty: notAfter ${iso(notAfterMs)}${capped} is not after notBefore ${iso(notBeforeMs)}`,
      { field: 'notAfterMs', reason: 'empty-validity' },
    );
  }

  const subject =
    dnsNames.length === 0
      ? derSequence(RDN_ORGANIZATION)
      : derSequence(RDN_ORGANIZATION, derSet(derSequence(OID_COMMON_NAME, derUtf8String(dnsNames[0]!))));
  const generalNames: Buffer[] = [derContext(6, false, Buffer.from(spiffeId.toString(), 'latin1'))];
  for (const name of dnsNames) generalNames.push(derContext(2, false, Buffer.from(name, 'latin1')));

  const tbs = derSequence(
    VERSION_V3,
    derInteger(params.serial === undefined ? randomSerial() : checkSerial(params.serial)),
    issuer.signatureAlgorithmDer,
    issuer.issuerNameDer,
    derSequence(derTime(notBeforeMs), derTime(notAfterMs)),
    subject,
    spki.der,
    derContext(
      3,
      true,
      derSequence(
        EXT_KEY_USAGE_LEAF,
        EXT_BASIC_CONSTRAINTS_LEAF,
        EXT_EXT_KEY_USAGE_LEAF,
        extension(OID_SUBJECT_KEY_ID, false, derOctetString(keyIdentifier(spki.keyBits))),
        issuer.authorityKeyIdExtensionDer,
        extension(OID_SUBJECT_ALT_NAME, false, derSequence(...generalNames)),
      ),
    ),
  );
  const signature = sign(issuer.hash, tbs, issuer.key);
  return derSequence(tbs, issuer.signatureAlgorithmDer, derBitString(signature));
}

/**
 * Checks a DNS SAN: RFC 1123 labels (letters, digits, inner "-"; 1-63 chars; 253 in all), with an
 * optional `*.` wildcard as the whole leftmost label. Throws ERR_INPUT_INVALID naming the bad name.
 * Shared with the admin API so an entry is refused when written, not when its SVID is minted.
 */
export function checkDnsName(name: string, field = 'dns_names'): void {
  const fail = (rule: string) =>
    new SigilError('ERR_INPUT_INVALID', `${field}: ${quote(name)} is not a valid DNS name: ${rule}`, {
      field,
      reason: 'dns-name',
    });
  if (typeof name !== 'string' || name === '') throw fail('it is empty');
  if (name.length > MAX_DNS_NAME_CHARS) throw fail(`it is longer than ${MAX_DNS_NAME_CHARS} characters`);
  const labels = name.split('.');
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label === '*' && i === 0 && labels.length > 1) continue;
    if (label === '') throw fail('it has an empty label (leading, trailing or double ".")');
    if (label.includes('*')) throw fail('"*" is allowed only as the whole leftmost label ("*.example.org")');
    if (label.length > MAX_DNS_LABEL_CHARS) throw fail(`label ${quote(label)} is longer than 63 characters`);
    if (!/^[A-Za-z0-9-]+$/.test(label))
      throw fail(`label ${quote(label)} may contain only letters, digits and "-"`);
    if (label.startsWith('-') || label.endsWith('-'))
      throw fail(`label ${quote(label)} starts or ends with "-"`);
  }
}

function checkSerial(serial: Buffer): Buffer {
  if (
    !Buffer.isBuffer(serial) ||
    serial.length === 0 ||
    serial.length > MAX_SERIAL_BYTES ||
    serial.every((b) => b === 0)
  ) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      'x509svid: serial must be 1-20 bytes and not zero (RFC 5280 §4.1.2.2)',
      {
        field: 'serial',
      },
    );
  }
  return serial;
}

let serialPool = Buffer.alloc(0);
let serialPoolAt = 0;

function randomSerial(): Buffer {
  if (serialPoolAt + RANDOM_SERIAL_BYTES > serialPool.length) {
    serialPool = randomFillSync(Buffer.allocUnsafe(SERIAL_POOL_BYTES));
    serialPoolAt = 0;
  }
  // A view, not a copy: each pool slice is handed out once, and derInteger copies it into the leaf.
  const serial = serialPool.subarray(serialPoolAt, serialPoolAt + RANDOM_SERIAL_BYTES);
  serialPoolAt += RANDOM_SERIAL_BYTES;
  serial[0]! &= 0x7f;
  // An all-zero draw (probability 2^-127) would be an invalid serial; make it 1 rather than loop.
  if (serial.every((b) => b === 0)) serial[RANDOM_SERIAL_BYTES - 1] = 1;
  return serial;
}

interface Spki {
  readonly der: Buffer;
  /** The subjectPublicKey BIT STRING contents (after the unused-bits octet): what the SKI hashes. */
  readonly keyBits: Buffer;
}

function subjectPublicKeyInfo(publicKey: KeyObject | Buffer): Spki {
  let der: Buffer;
  if (Buffer.isBuffer(publicKey)) {
    der = publicKey;
  } else {
    const key = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
    keyTypeOf(key);
    der = key.export({ type: 'spki', format: 'der' });
  }
  try {
    return { der, keyBits: spkiKeyBits(der) };
  } catch (err) {
    throw new SigilError('ERR_INPUT_INVALID', `x509svid: publicKey is not SPKI DER: ${messageOf(err)}`, {
      field: 'publicKey',
      cause: err,
    });
  }
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo, checking the SPKI's outer shape on the way. */
function spkiKeyBits(spkiDer: Buffer): Buffer {
  const outer = expectTlv(spkiDer, 0, DerTag.SEQUENCE, 'SubjectPublicKeyInfo');
  if (outer.end !== spkiDer.length)
    throw new SigilError('ERR_DER_INVALID', 'der: trailing bytes after the SPKI');
  const algorithm = expectTlv(spkiDer, outer.valueStart, DerTag.SEQUENCE, 'AlgorithmIdentifier', outer.end);
  const bits = expectTlv(spkiDer, algorithm.end, DerTag.BIT_STRING, 'subjectPublicKey', outer.end);
  if (bits.end !== outer.end) throw new SigilError('ERR_DER_INVALID', 'der: trailing bytes inside the SPKI');
  if (bits.end - bits.valueStart < 2 || spkiDer[bits.valueStart] !== 0) {
    throw new SigilError('ERR_DER_INVALID', 'der: subjectPublicKey is empty or not whole octets');
  }
  return spkiDer.subarray(bits.valueStart + 1, bits.end);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (SHA-1 is fine: an identifier, not a signature). */
function keyIdentifier(keyBits: Buffer): Buffer {
  // One-shot hash: createHash() builds a stream object per call, which showed up on the mint path.
  return hash('sha1', keyBits, 'buffer');
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  let oidDer = OID_DER.get(oid);
  if (oidDer === undefined) {
    oidDer = derOid(oid);
    OID_DER.set(oid, oidDer);
  }
  return critical
    ? derSequence(oidDer, CRITICAL_TRUE, derOctetString(value))
    : derSequence(oidDer, derOctetString(value));
}

// ---------------------------------------------------------------------------------------------
// CSRs

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

// ---------------------------------------------------------------------------------------------
// Verification

export interface VerifiedX509Svid {
  readonly spiffeId: SpiffeId;
  /** The verified path: leaf, the intermediates used, then the bundle authority it ends at. */
  readonly chain: readonly Buffer[];
}

/**
 * Validates an X509-SVID chain (leaf first, then intermediates in any order) per the SPIFFE spec §5
 * (spiffe-facts.md §2.2): SPIFFE leaf checks, then a signature path to an authority in the bundle of
 * the LEAF's trust domain, every certificate on it valid at `nowMs`. Bundle authorities are trust
 * anchors whether self-signed or not. EKU is not checked, matching go-spiffe.
 * Codes: ERR_X509_SVID_INVALID (not an SVID), ERR_BUNDLE_NOT_FOUND, ERR_X509_VERIFY_FAILED (no path).
 */
export function verifyX509Svid(
  chain: readonly Buffer[],
  bundleFor: (trustDomain: TrustDomain) => readonly Buffer[] | undefined,
  nowMs: number,
): VerifiedX509Svid {
  if (chain.length === 0) throw svidError('the chain is empty (expected the leaf first)', 'empty');
  const certs = chain.map((der, i) => loadChainCertificate(der, i));
  const leaf = certs[0]!;
  const spiffeId = leafSpiffeId(leaf.parsed);

  const constraints = basicConstraintsOf(leaf.parsed);
  if (constraints.isCa) throw svidError('leaf has cA=true; an SVID leaf must not be a CA', 'leaf-ca');
  const keyUsage = keyUsageOf(leaf.parsed);
  if (keyUsage === null)
    throw svidError('leaf has no keyUsage extension (digitalSignature required)', 'leaf-ku');
  if (keyUsage & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) {
    throw svidError('leaf key usage includes keyCertSign or cRLSign, which a leaf must not have', 'leaf-ku');
  }
  if ((keyUsage & KU_DIGITAL_SIGNATURE) === 0) {
    throw svidError('leaf key usage lacks digitalSignature', 'leaf-ku');
  }
  checkCriticalExtensions(leaf, 'leaf');
  checkValidity(leaf, 'leaf', nowMs);

  const trustDomain = spiffeId.trustDomain;
  const bundle = bundleFor(trustDomain);
  if (bundle === undefined || bundle.length === 0) {
    throw new SigilError(
      'ERR_BUNDLE_NOT_FOUND',
      `x509svid: no bundle for trust domain "${trustDomain.name}" (leaf ${spiffeId})`,
      { reason: 'no-bundle' },
    );
  }
  const authorities = bundle.map((der, i) => loadBundleAuthority(der, i, trustDomain));

  const path: ChainCertificate[] = [leaf];
  const used = new Set<number>([0]);
  let current = leaf;
  let currentLabel = 'leaf';
  for (;;) {
    const intermediatesBelow = path.length - 1;
    let signatureFailure: string | undefined;
    let anchorFailure: string | undefined;
    for (const authority of authorities) {
      if (!current.node.checkIssued(authority.node)) continue;
      if (!current.node.verify(authority.node.publicKey)) {
        signatureFailure = `${currentLabel} signature does not verify with authority ${quote(authority.subject)}`;
        continue;
      }
      const problem = authorityProblem(authority, nowMs, intermediatesBelow);
      if (problem !== undefined) {
        anchorFailure = `bundle authority ${quote(authority.subject)} ${problem}`;
        continue;
      }
      path.push(authority);
      return { spiffeId, chain: Object.freeze(path.map((c) => c.der)) };
    }
    let next: ChainCertificate | undefined;
    for (let i = 1; i < certs.length && next === undefined; i++) {
      const candidate = certs[i]!;
      if (used.has(i) || !current.node.checkIssued(candidate.node)) continue;
      if (!current.node.verify(candidate.node.publicKey)) {
        signatureFailure = `${currentLabel} signature does not verify with intermediate ${quote(candidate.subject)}`;
        continue;
      }
      used.add(i);
      next = candidate;
    }
    if (next === undefined) {
      const detail =
        anchorFailure ??
        signatureFailure ??
        `no authority in the bundle for "${trustDomain.name}" signed the ${currentLabel} (its issuer is ${quote(current.issuer)})`;
      throw new SigilError('ERR_X509_VERIFY_FAILED', `x509svid: ${detail}`, { reason: 'no-path' });
    }
    const label = `intermediate ${quote(next.subject)}`;
    const nextConstraints = basicConstraintsOf(next.parsed);
    if (!nextConstraints.isCa)
      throw verifyError(`${label} has cA=false, it cannot sign certificates`, 'intermediate');
    const nextKeyUsage = keyUsageOf(next.parsed);
    if (nextKeyUsage === null || (nextKeyUsage & KU_KEY_CERT_SIGN) === 0) {
      throw verifyError(`${label} lacks the keyCertSign key usage`, 'intermediate');
    }
    if (nextConstraints.pathLen !== undefined && intermediatesBelow > nextConstraints.pathLen) {
      throw verifyError(
        `${label} allows ${nextConstraints.pathLen} CAs below it, the path has more`,
        'path-len',
      );
    }
    checkCriticalExtensions(next, label);
    checkValidity(next, label, nowMs);
    path.push(next);
    current = next;
    currentLabel = label;
  }
}

interface ChainCertificate {
  readonly der: Buffer;
  readonly parsed: ParsedCertificate;
  readonly node: X509Certificate;
  readonly subject: string;
  readonly issuer: string;
}

function loadChainCertificate(der: Buffer, index: number): ChainCertificate {
  try {
    return loadCertificate(der);
  } catch (err) {
    const which = index === 0 ? 'leaf' : `chain certificate ${index}`;
    throw svidError(`${which} is not a readable certificate: ${messageOf(err)}`, 'malformed', err);
  }
}

function loadBundleAuthority(der: Buffer, index: number, trustDomain: TrustDomain): ChainCertificate {
  try {
    return loadCertificate(der);
  } catch (err) {
    throw new SigilError(
      'ERR_BUNDLE_INVALID',
      `x509svid: bundle for "${trustDomain.name}" has an unreadable authority at index ${index}: ${messageOf(err)}`,
      { cause: err },
    );
  }
}

function loadCertificate(der: Buffer): ChainCertificate {
  const parsed = parseCertificate(der);
  const node = new X509Certificate(der);
  return { der, parsed, node, subject: oneLine(node.subject), issuer: oneLine(node.issuer) };
}

function leafSpiffeId(cert: ParsedCertificate): SpiffeId {
  const san = cert.extensions.get(OID_SUBJECT_ALT_NAME);
  const uris = san ? subjectAltNames(san.value).uris : [];
  if (uris.length !== 1) {
    throw svidError(`leaf has ${uris.length} URI SANs (an SVID has exactly one, its SPIFFE ID)`, 'uri-count');
  }
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uris[0]!, 'uri_san');
  } catch (err) {
    throw svidError(`leaf URI SAN is not a SPIFFE ID: ${messageOf(err)}`, 'uri', err);
  }
  if (id.isTrustDomainId)
    throw svidError(`leaf SPIFFE ID "${id}" has no path (a workload ID needs one)`, 'no-path');
  return id;
}

function authorityProblem(
  authority: ChainCertificate,
  nowMs: number,
  intermediatesBelow: number,
): string | undefined {
  if (nowMs < authority.parsed.notBeforeMs) return `is not valid until ${iso(authority.parsed.notBeforeMs)}`;
  if (nowMs > authority.parsed.notAfterMs) return `expired at ${iso(authority.parsed.notAfterMs)}`;
  const { pathLen } = basicConstraintsOf(authority.parsed);
  if (pathLen !== undefined && intermediatesBelow > pathLen) {
    return `allows ${pathLen} CAs below it, the path has ${intermediatesBelow}`;
  }
  return undefined;
}

function checkValidity(cert: ChainCertificate, label: string, nowMs: number): void {
  if (nowMs < cert.parsed.notBeforeMs) {
    throw verifyError(
      `${label} is not valid until ${iso(cert.parsed.notBeforeMs)} (now ${iso(nowMs)})`,
      'not-yet-valid',
    );
  }
  if (nowMs > cert.parsed.notAfterMs) {
    throw verifyError(`${label} expired at ${iso(cert.parsed.notAfterMs)} (now ${iso(nowMs)})`, 'expired');
  }
}

function checkCriticalExtensions(cert: ChainCertificate, label: string): void {
  for (const [oid, ext] of cert.parsed.extensions) {
    if (ext.critical && !KNOWN_EXTENSIONS.has(oid)) {
      throw verifyError(
        `${label} has critical extension ${oid}, which this verifier does not process`,
        'critical',
      );
    }
  }
}

function svidError(rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError('ERR_X509_SVID_INVALID', `x509svid: ${rule}`, { reason, cause });
}

function verifyError(rule: string, reason: string): SigilError {
  return new SigilError('ERR_X509_VERIFY_FAILED', `x509svid: ${rule}`, { reason });
}

// ---------------------------------------------------------------------------------------------
// Describing

export interface CertificateDescription {
  /** e.g. `O=Sigil, CN=web.example.org` (node:crypto's rendering, one line). */
  readonly subject: string;
  readonly issuer: string;
  /** Lowercase hex of the serial's magnitude, no sign octet. */
  readonly serialHex: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** The first URI SAN when it is a `spiffe://` URI; not validated here. */
  readonly spiffeId: string | null;
  readonly isCa: boolean;
  readonly subjectKeyIdHex: string | null;
  /** SHA-256 of the DER, lowercase hex. */
  readonly fingerprintSha256Hex: string;
}

/** Facts about a DER certificate for CLIs, logs and the CA. Throws ERR_DER_INVALID when unreadable. */
export function describeCertificate(der: Buffer): CertificateDescription {
  const parsed = parseCertificate(der);
  let node: X509Certificate;
  try {
    node = new X509Certificate(der);
  } catch (err) {
    throw new SigilError(
      'ERR_DER_INVALID',
      `x509: not a certificate node:crypto can read: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  const san = parsed.extensions.get(OID_SUBJECT_ALT_NAME);
  const firstUri = san ? (subjectAltNames(san.value).uris[0] ?? null) : null;
  const ski = parsed.extensions.get(OID_SUBJECT_KEY_ID);
  return Object.freeze({
    subject: oneLine(node.subject),
    issuer: oneLine(node.issuer),
    serialHex: parsed.serialHex,
    notBeforeMs: parsed.notBeforeMs,
    notAfterMs: parsed.notAfterMs,
    spiffeId: firstUri?.startsWith('spiffe://') ? firstUri : null,
    isCa: basicConstraintsOf(parsed).isCa,
    subjectKeyIdHex: ski ? readOctetString(ski.value).toString('hex') : null,
    fingerprintSha256Hex: createHash('sha256').update(der).digest('hex'),
  });
}

// ---------------------------------------------------------------------------------------------
// Certificate reading (just the fields SPIFFE rules need)

interface CertExtension {
  readonly critical: boolean;
  readonly value: Buffer;
}

interface ParsedCertificate {
  readonly serialHex: string;
  readonly subjectDer: Buffer;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly spkiDer: Buffer;
  readonly extensions: ReadonlyMap<string, CertExtension>;
}

function parseCertificate(der: Buffer): ParsedCertificate {
  if (!Buffer.isBuffer(der)) throw new SigilError('ERR_DER_INVALID', 'x509: expected a DER Buffer');
  const outer = expectTlv(der, 0, DerTag.SEQUENCE, 'Certificate');
  if (outer.end !== der.length) {
    throw new SigilError(
      'ERR_DER_INVALID',
      `x509: ${der.length - outer.end} trailing bytes after the certificate`,
    );
  }
  const parts = readChildren(der, outer);
  if (parts.length !== 3 || parts[0]!.tag !== DerTag.SEQUENCE) {
    throw new SigilError(
      'ERR_DER_INVALID',
      'x509: a Certificate has tbsCertificate, algorithm and signature',
    );
  }
  const fields = readChildren(der, parts[0]!);
  let at = fields[0]?.tag === 0xa0 ? 1 : 0;
  const field = (tag: number, what: string): DerTlv => {
    const tlv = fields[at++];
    if (tlv === undefined || tlv.tag !== tag) {
      throw new SigilError('ERR_DER_INVALID', `x509: tbsCertificate is missing its ${what}`);
    }
    return tlv;
  };
  const serial = tlvValue(der, field(DerTag.INTEGER, 'serialNumber'));
  field(DerTag.SEQUENCE, 'signature algorithm');
  field(DerTag.SEQUENCE, 'issuer');
  const validity = readChildren(der, field(DerTag.SEQUENCE, 'validity'));
  if (validity.length !== 2) throw new SigilError('ERR_DER_INVALID', 'x509: validity must hold two times');
  const subject = field(DerTag.SEQUENCE, 'subject');
  const spki = field(DerTag.SEQUENCE, 'subjectPublicKeyInfo');
  const extensions = new Map<string, CertExtension>();
  const extField = fields.slice(at).find((f) => f.tag === 0xa3);
  if (extField) {
    const list = expectTlv(der, extField.valueStart, DerTag.SEQUENCE, 'Extensions', extField.end);
    for (const ext of readChildren(der, list)) {
      const items = readChildren(der, ext);
      const oid = readOid(der, items[0]!);
      const hasCritical = items[1]?.tag === DerTag.BOOLEAN;
      const critical = hasCritical && der[items[1]!.valueStart] !== 0;
      const valueTlv = items[hasCritical ? 2 : 1];
      if (valueTlv?.tag !== DerTag.OCTET_STRING) {
        throw new SigilError('ERR_DER_INVALID', `x509: extension ${oid} has no OCTET STRING value`);
      }
      if (extensions.has(oid))
        throw new SigilError('ERR_DER_INVALID', `x509: extension ${oid} appears twice`);
      extensions.set(oid, { critical, value: tlvValue(der, valueTlv) });
    }
  }
  const magnitude = serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;
  return {
    serialHex: magnitude.toString('hex'),
    subjectDer: tlvBytes(der, subject),
    notBeforeMs: readTime(der, validity[0]!),
    notAfterMs: readTime(der, validity[1]!),
    spkiDer: tlvBytes(der, spki),
    extensions,
  };
}

function basicConstraintsOf(cert: ParsedCertificate): { isCa: boolean; pathLen: number | undefined } {
  const ext = cert.extensions.get(OID_BASIC_CONSTRAINTS);
  if (!ext) return { isCa: false, pathLen: undefined };
  const seq = expectTlv(ext.value, 0, DerTag.SEQUENCE, 'BasicConstraints');
  const items = readChildren(ext.value, seq);
  let i = 0;
  let isCa = false;
  if (items[i]?.tag === DerTag.BOOLEAN) isCa = ext.value[items[i++]!.valueStart] !== 0;
  const pathLen = items[i]?.tag === DerTag.INTEGER ? readSmallInteger(ext.value, items[i]!) : undefined;
  return { isCa, pathLen };
}

/** The keyUsage bits as a 16-bit mask (see KU_*), or null when the extension is absent. */
function keyUsageOf(cert: ParsedCertificate): number | null {
  const ext = cert.extensions.get(OID_KEY_USAGE);
  if (!ext) return null;
  const bits = expectTlv(ext.value, 0, DerTag.BIT_STRING, 'KeyUsage');
  const length = bits.end - bits.valueStart;
  if (length < 1) throw new SigilError('ERR_DER_INVALID', 'x509: keyUsage bit string is empty');
  const first = length > 1 ? ext.value[bits.valueStart + 1]! : 0;
  const second = length > 2 ? ext.value[bits.valueStart + 2]! : 0;
  return (first << 8) | second;
}

function subjectAltNames(value: Buffer): { uris: string[]; dnsNames: string[] } {
  const seq = expectTlv(value, 0, DerTag.SEQUENCE, 'SubjectAltName');
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const name of readChildren(value, seq)) {
    if (name.tag === 0x86) uris.push(tlvValue(value, name).toString('latin1'));
    else if (name.tag === 0x82) dnsNames.push(tlvValue(value, name).toString('latin1'));
  }
  return { uris, dnsNames };
}

function readOctetString(value: Buffer): Buffer {
  return tlvValue(value, expectTlv(value, 0, DerTag.OCTET_STRING, 'key identifier'));
}

function oidHex(dotted: string): string {
  const der = derOid(dotted);
  return tlvValue(der, readTlv(der)).toString('hex');
}

function oneLine(name: string): string {
  return name.split('\n').join(', ');
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
