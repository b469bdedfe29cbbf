// Reading X.509 certificates: just the fields SPIFFE rules need (serial, validity, subject, SPKI,
// extensions), plus describeCertificate for CLIs and logs. Shared by minting (the CA certificate),
// verification and the operator views; it never judges a certificate, callers do.
import { createHash, X509Certificate } from 'node:crypto';
import {
  DerTag,
  type DerTlv,
  expectTlv,
  readChildren,
  readOid,
  readSmallInteger,
  readTime,
  tlvBytes,
  tlvValue,
} from './der.js';
import { SigilError } from './errors.js';

export const OID_KEY_USAGE = '2.5.29.15';
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_SUBJECT_ALT_NAME = '2.5.29.17';
export const OID_EXT_KEY_USAGE = '2.5.29.37';
export const OID_SUBJECT_KEY_ID = '2.5.29.14';
export const OID_AUTHORITY_KEY_ID = '2.5.29.35';

/** keyUsage named bits as masks over the first two value octets (bit 0 is the MSB of the first). */
export const KU_DIGITAL_SIGNATURE = 0x8000;
export const KU_KEY_CERT_SIGN = 0x0400;
export const KU_CRL_SIGN = 0x0200;

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

export interface CertExtension {
  readonly critical: boolean;
  readonly value: Buffer;
}

export interface ParsedCertificate {
  readonly serialHex: string;
  readonly issuerDer: Buffer;
  readonly subjectDer: Buffer;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly spkiDer: Buffer;
  readonly extensions: ReadonlyMap<string, CertExtension>;
}

export function parseCertificate(der: Buffer): ParsedCertificate {
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
  const issuer = field(DerTag.SEQUENCE, 'issuer');
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
    issuerDer: tlvBytes(der, issuer),
    subjectDer: tlvBytes(der, subject),
    notBeforeMs: readTime(der, validity[0]!),
    notAfterMs: readTime(der, validity[1]!),
    spkiDer: tlvBytes(der, spki),
    extensions,
  };
}

export function basicConstraintsOf(cert: ParsedCertificate): { isCa: boolean; pathLen: number | undefined } {
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
export function keyUsageOf(cert: ParsedCertificate): number | null {
  const ext = cert.extensions.get(OID_KEY_USAGE);
  if (!ext) return null;
  const bits = expectTlv(ext.value, 0, DerTag.BIT_STRING, 'KeyUsage');
  const length = bits.end - bits.valueStart;
  if (length < 1) throw new SigilError('ERR_DER_INVALID', 'x509: keyUsage bit string is empty');
  const first = length > 1 ? ext.value[bits.valueStart + 1]! : 0;
  const second = length > 2 ? ext.value[bits.valueStart + 2]! : 0;
  return (first << 8) | second;
}

export function subjectAltNames(value: Buffer): { uris: string[]; dnsNames: string[] } {
  const seq = expectTlv(value, 0, DerTag.SEQUENCE, 'SubjectAltName');
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const name of readChildren(value, seq)) {
    if (name.tag === 0x86) uris.push(tlvValue(value, name).toString('latin1'));
    else if (name.tag === 0x82) dnsNames.push(tlvValue(value, name).toString('latin1'));
  }
  return { uris, dnsNames };
}

export function readOctetString(value: Buffer): Buffer {
  return tlvValue(value, expectTlv(value, 0, DerTag.OCTET_STRING, 'key identifier'));
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo, checking the SPKI's outer shape on the way. */
export function spkiKeyBits(spkiDer: Buffer): Buffer {
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

export function oneLine(name: string): string {
  return name.split('\n').join(', ');
}

export function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
