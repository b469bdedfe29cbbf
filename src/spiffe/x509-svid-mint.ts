// Minting X509-SVID leaves (spiffe-facts.md §2.1). Minting is the CA's hot path, so it skips general
// ASN.1 libraries: everything constant for a signing CA is encoded once in prepareIssuer, and each
// leaf is a few buffer concatenations plus one crypto.sign. CA certificates (rare, async) are made
// in x509-authority.ts with @peculiar/x509. Nothing from a CSR but its key ever reaches a leaf.
import { createPublicKey, hash, type KeyObject, sign } from 'node:crypto';
import {
  DerTag,
  derBitString,
  derContext,
  derInteger,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derTime,
  derUtf8String,
} from './der.js';
import { checkDnsName } from './dns-name.js';
import { SigilError } from './errors.js';
import type { SpiffeId } from './id.js';
import { hashFor, type KeyType, keyTypeOf } from './keys.js';
import { SIGIL_SERVER_MARKER_OID, SIGIL_SERVER_MARKER_VALUE } from './sigil-ids.js';
import {
  basicConstraintsOf,
  iso,
  KU_KEY_CERT_SIGN,
  keyUsageOf,
  messageOf,
  OID_AUTHORITY_KEY_ID,
  OID_BASIC_CONSTRAINTS,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_SUBJECT_ALT_NAME,
  OID_SUBJECT_KEY_ID,
  type ParsedCertificate,
  parseCertificate,
  readOctetString,
  spkiKeyBits,
} from './x509-certificate.js';
import { checkSerial, randomSerial } from './x509-serial.js';

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
/** Marks the server's own SVID (see sigil-ids.ts for why it exists and why it is not critical). */
const EXT_SIGIL_SERVER_MARKER = extension(SIGIL_SERVER_MARKER_OID, false, SIGIL_SERVER_MARKER_VALUE);
/** The `O=Sigil` RDN every leaf subject starts with. */
const RDN_ORGANIZATION = derSet(derSequence(derOid('2.5.4.10'), derUtf8String('Sigil')));
const OID_COMMON_NAME = derOid('2.5.4.3');

/** AlgorithmIdentifier DER for each CA key type (RFC 5758 for ECDSA: no parameters; RFC 4055 for RSA: NULL). */
const SIGNATURE_ALGORITHMS: Readonly<Record<KeyType, Buffer>> = {
  'ec-p256': Buffer.from('300a06082a8648ce3d040302', 'hex'),
  'ec-p384': Buffer.from('300a06082a8648ce3d040303', 'hex'),
  'rsa-2048': Buffer.from('300d06092a864886f70d01010b0500', 'hex'),
};

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
  /**
   * Adds the Sigil server marker (sigil-ids.ts SIGIL_SERVER_MARKER_OID), non-critical. Only the CA's
   * server-SVID method sets it; nothing a requester sends can.
   */
  readonly isSigilServer?: boolean;
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
 * Throws ERR_X509_SVID_INVALID for a root-path ID or an empty validity window, ERR_CA_UNAVAILABLE when
 * the window is empty only because the issuer expired before notBefore, ERR_INPUT_INVALID for a bad DNS name, serial or SPKI, ERR_KEY_INVALID for an unsupported key.
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
  const requestedAfterMs = Math.floor(params.notAfterMs / 1000) * 1000;
  if (Number.isFinite(notBeforeMs) && requestedAfterMs > notBeforeMs && notAfterMs <= notBeforeMs) {
    // The request was fine; the issuer ran out. Its own code, so that an API edge reports the CA as
    // unavailable instead of blaming the caller's request.
    throw new SigilError(
      'ERR_CA_UNAVAILABLE',
      `x509svid: the issuing CA expired at ${iso(issuer.notAfterMs)}; no SVID can be signed until a newer authority is active`,
      { field: 'notAfterMs', reason: 'issuer-expired' },
    );
  }
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
    derInteger(params.serial === undefined ? randomSerial() : checkSerial(params.serial, 'x509svid')),
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
        ...(params.isSigilServer === true ? [EXT_SIGIL_SERVER_MARKER] : []),
      ),
    ),
  );
  const signature = sign(issuer.hash, tbs, issuer.key);
  return derSequence(tbs, issuer.signatureAlgorithmDer, derBitString(signature));
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
