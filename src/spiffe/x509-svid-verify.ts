// Verifying X509-SVID chains per the SPIFFE spec §5 (spiffe-facts.md §2.2). Signatures are left to
// node:crypto; the SPIFFE leaf rules, path building and constraints are checked here on our own
// DER reading, so every refusal names the certificate and the rule it broke.
import { X509Certificate } from 'node:crypto';
import { quote, SigilError } from './errors.js';
import { parseSpiffeId, type SpiffeId, type TrustDomain } from './id.js';
import {
  basicConstraintsOf,
  iso,
  KU_CRL_SIGN,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_CERT_SIGN,
  keyUsageOf,
  messageOf,
  OID_AUTHORITY_KEY_ID,
  OID_BASIC_CONSTRAINTS,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_SUBJECT_ALT_NAME,
  OID_SUBJECT_KEY_ID,
  oneLine,
  type ParsedCertificate,
  parseCertificate,
  subjectAltNames,
} from './x509-certificate.js';

/** Extensions this module understands; any other critical one makes a cert unusable (RFC 5280 §4.2). */
const KNOWN_EXTENSIONS = new Set([
  OID_KEY_USAGE,
  OID_BASIC_CONSTRAINTS,
  OID_SUBJECT_ALT_NAME,
  OID_EXT_KEY_USAGE,
  OID_SUBJECT_KEY_ID,
  OID_AUTHORITY_KEY_ID,
]);

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
