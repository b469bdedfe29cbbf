// CA certificates: minting our X.509 authorities (self-signed roots or signed by an upstream) and
// checking certificates loaded as upstream authorities. CA certs are made once a day or so, so this
// uses @peculiar/x509 for clarity rather than the hand-encoded fast path leaves take (x509-svid.ts).
// The library gets node's WebCrypto passed explicitly; we never set its global provider.
import 'reflect-metadata';
import { createHash, createPublicKey, type KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { DerTag, derOid, derPrintableString, derSequence, derSet, derUtf8String, expectTlv } from './der.js';
import { isSigilError, SigilError } from './errors.js';
import type { TrustDomain } from './id.js';
import { type KeyType, keyTypeOf } from './keys.js';
import { decodePem } from './pem.js';
import { KU_KEY_CERT_SIGN, keyUsageOf, parseCertificate } from './x509-certificate.js';
import { checkSerial, randomSerial } from './x509-serial.js';
import { type CertificateDescription, describeCertificate, prepareIssuer } from './x509-svid.js';

// Our lib setting has no DOM types, so name the WebCrypto types through the library's own signatures.
type WebCryptoProvider = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
type SigningKey = x509.X509CertificateCreateWithKeyParams['signingKey'];
type SigningAlgorithm = NonNullable<x509.X509CertificateCreateWithKeyParams['signingAlgorithm']>;

const OID_ORGANIZATION = '2.5.4.10';
/** X.520 serialNumber attribute: SPIRE puts the cert serial here so each CA has a distinct subject. */
const OID_SERIAL_NUMBER = '2.5.4.5';

export interface CreateCaCertificateParams {
  /** Becomes the URI SAN `spiffe://<td>` (no path, no trailing slash). */
  readonly trustDomain: TrustDomain;
  /** The new CA's private key; the certificate carries its public half. */
  readonly key: KeyObject;
  /** The parent CA. Absent: a self-signed root. */
  readonly signer?: { readonly certDer: Buffer; readonly key: KeyObject };
  /** Unsigned big-endian, 1-20 octets, not zero. Defaults to 128 random bits. */
  readonly serial?: Buffer;
  /** Already backdated by the caller. Truncated to whole seconds. */
  readonly notBeforeMs: number;
  /** Capped at the signer's notAfter. Truncated to whole seconds. */
  readonly notAfterMs: number;
}

/**
 * A DER CA certificate in SPIRE's X509 CA shape (spiffe-facts.md §2.1): subject `O=Sigil,
 * serialNumber=<serial hex>`, URI SAN `spiffe://<td>`, critical keyUsage keyCertSign+cRLSign,
 * critical basicConstraints cA=true, SKI, AKI (the signer's SKI; its own when self-signed, as SPIRE
 * does), no EKU. Throws ERR_INPUT_INVALID for bad times or serial, ERR_KEY_INVALID for a bad key.
 */
export async function createCaCertificate(params: CreateCaCertificateParams): Promise<Buffer> {
  const { key, signer } = params;
  if (key.type !== 'private') {
    throw new SigilError('ERR_KEY_INVALID', 'x509ca: the CA key must be a private key', { field: 'key' });
  }
  keyTypeOf(key);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const ownKeyId = keyIdentifier(spki);
  const parent = signer ? prepareIssuer(signer.certDer, signer.key) : undefined;

  const notBeforeMs = Math.floor(params.notBeforeMs / 1000) * 1000;
  const cappedMs = parent ? Math.min(params.notAfterMs, parent.notAfterMs) : params.notAfterMs;
  const notAfterMs = Math.floor(cappedMs / 1000) * 1000;
  if (!Number.isFinite(notBeforeMs) || !Number.isFinite(notAfterMs) || notAfterMs <= notBeforeMs) {
    const capped =
      parent && params.notAfterMs > parent.notAfterMs ? " (capped at the signer's notAfter)" : '';
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `x509ca: validity is empty: notAfter ${iso(notAfterMs)}${capped} is not after notBefore ${iso(notBeforeMs)}`,
      { field: 'notAfterMs', reason: 'empty-validity' },
    );
  }

  const serialHex = serialToHex(params.serial ?? randomSerial());
  const subjectDer = derSequence(
    derSet(derSequence(derOid(OID_ORGANIZATION), derUtf8String('Sigil'))),
    derSet(derSequence(derOid(OID_SERIAL_NUMBER), derPrintableString(serialHex))),
  );
  const signingKeyObject = signer ? signer.key : key;
  const signingKeyType = keyTypeOf(signingKeyObject);
  const crypto = webcrypto as unknown as WebCryptoProvider;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex,
      subject: new x509.Name(subjectDer),
      // The issuer is the signer's subject byte for byte, so name chaining never depends on re-encoding.
      issuer: new x509.Name(parent ? parent.issuerNameDer : subjectDer),
      notBefore: new Date(notBeforeMs),
      notAfter: new Date(notAfterMs),
      publicKey: spki,
      signingKey: await importSigningKey(signingKeyObject, signingKeyType),
      signingAlgorithm: signingAlgorithm(signingKeyType),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectKeyIdentifierExtension(ownKeyId.toString('hex'), false),
        new x509.AuthorityKeyIdentifierExtension(
          (parent ? parent.subjectKeyId : ownKeyId).toString('hex'),
          false,
        ),
        new x509.SubjectAlternativeNameExtension(
          [{ type: 'url', value: params.trustDomain.idString }],
          false,
        ),
      ],
    },
    crypto,
  );
  return Buffer.from(cert.rawData);
}

export interface CaCertificate extends CertificateDescription {
  readonly der: Buffer;
}

/**
 * Reads a CA certificate (DER, or PEM with exactly one CERTIFICATE block), typically an upstream
 * authority loaded from disk, and checks it can sign SVID CAs: cA=true and a keyUsage with
 * keyCertSign. With `nowMs`, it must also be within its validity. Throws ERR_UPSTREAM_INVALID.
 */
export function parseCaCertificate(input: Buffer | string, nowMs?: number): CaCertificate {
  const der = certificateDer(input);
  const checked = checkCaCertificate(der, { keyUsageRequired: true });
  if ('rule' in checked) throw upstreamError(checked.rule, checked.reason, checked.cause);
  const { description } = checked;
  const who = `certificate "${description.subject}"`;
  if (nowMs !== undefined) {
    if (nowMs < description.notBeforeMs) {
      throw upstreamError(`${who} is not valid until ${iso(description.notBeforeMs)}`, 'not-yet-valid');
    }
    if (nowMs > description.notAfterMs) {
      throw upstreamError(`${who} expired at ${iso(description.notAfterMs)}`, 'expired');
    }
  }
  return Object.freeze({ ...description, der: Buffer.from(der) });
}

interface CaCertificateProblem {
  readonly rule: string;
  readonly reason: string;
  readonly cause?: unknown;
}

/**
 * Why `der` cannot be a CA certificate, or undefined when it can: it must be readable, have
 * basicConstraints cA=true, and a keyUsage that includes keyCertSign. Without `keyUsageRequired` an
 * absent keyUsage passes (RFC 5280: no restriction), as older third-party roots in federated bundles
 * may lack it; an authority we sign under must state it.
 */
export function caCertificateProblem(
  der: Buffer,
  options: { readonly keyUsageRequired: boolean },
): CaCertificateProblem | undefined {
  const checked = checkCaCertificate(der, options);
  return 'rule' in checked ? checked : undefined;
}

/** caCertificateProblem's check, handing back the description it read so parseCaCertificate reads it once. */
function checkCaCertificate(
  der: Buffer,
  options: { readonly keyUsageRequired: boolean },
): CaCertificateProblem | { readonly description: CertificateDescription } {
  let description: CertificateDescription;
  let keyUsage: number | null;
  try {
    description = describeCertificate(der);
    keyUsage = keyUsageOf(parseCertificate(der));
  } catch (err) {
    return { rule: `not a readable X.509 certificate: ${messageOf(err)}`, reason: 'malformed', cause: err };
  }
  const who = `certificate "${description.subject}"`;
  if (!description.isCa)
    return { rule: `${who} is not a CA (basicConstraints cA is not true)`, reason: 'not-ca' };
  if (keyUsage === null) {
    return options.keyUsageRequired
      ? { rule: `${who} has no keyUsage extension (keyCertSign required)`, reason: 'no-ku' }
      : { description };
  }
  if ((keyUsage & KU_KEY_CERT_SIGN) === 0) {
    return { rule: `${who} lacks the keyCertSign key usage`, reason: 'no-ku' };
  }
  return { description };
}

/**
 * True when `key` (private or public) is the key pair of the certificate's subject public key.
 * Throws ERR_DER_INVALID when the certificate is unreadable, so corruption is not reported as a mismatch.
 */
export function certificateMatchesKey(certDer: Buffer, key: KeyObject): boolean {
  let certSpki: Buffer;
  try {
    certSpki = new X509Certificate(certDer).publicKey.export({ type: 'spki', format: 'der' });
  } catch (err) {
    throw new SigilError('ERR_DER_INVALID', `x509ca: not a readable certificate: ${messageOf(err)}`, {
      cause: err,
    });
  }
  const keySpki = (key.type === 'private' ? createPublicKey(key) : key).export({
    type: 'spki',
    format: 'der',
  });
  return certSpki.equals(keySpki);
}

function certificateDer(input: Buffer | string): Buffer {
  if (Buffer.isBuffer(input) && input[0] === DerTag.SEQUENCE) return input;
  const text =
    typeof input === 'string' ? input : Buffer.isBuffer(input) ? input.toString('utf8') : undefined;
  if (text === undefined) throw upstreamError('expected a DER Buffer or PEM text', 'type');
  let certs: Buffer[];
  try {
    certs = decodePem(text, 'certificate')
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => b.der);
  } catch (err) {
    throw upstreamError(`PEM is unreadable: ${messageOf(err)}`, 'format', err);
  }
  if (certs.length !== 1) {
    throw upstreamError(`expected exactly one PEM CERTIFICATE block, found ${certs.length}`, 'format');
  }
  return certs[0]!;
}

async function importSigningKey(key: KeyObject, keyType: KeyType): Promise<SigningKey> {
  const algorithm =
    keyType === 'rsa-2048'
      ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
      : { name: 'ECDSA', namedCurve: keyType === 'ec-p256' ? 'P-256' : 'P-384' };
  return (await webcrypto.subtle.importKey(
    'pkcs8',
    key.export({ type: 'pkcs8', format: 'der' }),
    algorithm,
    false,
    ['sign'],
  )) as unknown as SigningKey;
}

/** Same choice as the leaf path: SHA-384 with P-384, SHA-256 otherwise. */
function signingAlgorithm(keyType: KeyType): SigningAlgorithm {
  if (keyType === 'rsa-2048') return { name: 'RSASSA-PKCS1-v1_5' };
  return { name: 'ECDSA', hash: keyType === 'ec-p384' ? 'SHA-384' : 'SHA-256' } as SigningAlgorithm;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits of an SPKI. */
function keyIdentifier(spkiDer: Buffer): Buffer {
  const outer = expectTlv(spkiDer, 0, DerTag.SEQUENCE, 'SubjectPublicKeyInfo');
  const algorithm = expectTlv(spkiDer, outer.valueStart, DerTag.SEQUENCE, 'AlgorithmIdentifier', outer.end);
  const bits = expectTlv(spkiDer, algorithm.end, DerTag.BIT_STRING, 'subjectPublicKey', outer.end);
  return createHash('sha1')
    .update(spkiDer.subarray(bits.valueStart + 1, bits.end))
    .digest();
}

/** Minimal even-length lowercase hex of an unsigned serial: the form used in the subject and by describe. */
function serialToHex(serial: Buffer): string {
  checkSerial(serial, 'x509ca');
  let start = 0;
  while (serial[start] === 0) start++;
  return serial.subarray(start).toString('hex');
}

function upstreamError(rule: string, reason: string, cause?: unknown): SigilError {
  if (isSigilError(cause, 'ERR_UPSTREAM_INVALID')) return cause;
  return new SigilError('ERR_UPSTREAM_INVALID', `upstream: ${rule}`, { reason, cause });
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The authority among `authorities` that issued `leafDer` (named as its issuer, and its signature
 * checks out), or undefined. For bare leaves handed out by a CA whose own certificate is not in the
 * chain (Sigil's self-signed CA), where a chain verification has nothing to walk.
 */
export function issuingAuthority(
  leafDer: Buffer,
  authorities: readonly X509Certificate[],
): X509Certificate | undefined {
  const leaf = new X509Certificate(leafDer);
  return authorities.find((authority) => leaf.checkIssued(authority) && leaf.verify(authority.publicKey));
}
