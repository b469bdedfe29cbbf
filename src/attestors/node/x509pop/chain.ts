// Path validation for x509pop node certificates. These are not SVIDs (no SPIFFE ID, any subject), so
// x509-svid.ts's verifier does not apply; this one does RFC 5280 basics: signatures up to a configured
// root, validity of every certificate at the given time, cA and keyCertSign on intermediates, path
// length limits, digitalSignature on the leaf when it has a keyUsage, and no unknown critical extension.
// Not checked: revocation, name constraints (a CA that marks them critical is refused), policies, EKU.
// Signatures go through node:crypto; @peculiar/x509 reads the extensions.
import 'reflect-metadata';
import { createHash, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { quote, SigilError } from '../../../spiffe/errors.js';

/** Extensions processed here or harmless to ignore; any other critical one makes a certificate unusable. */
const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.37', // extKeyUsage (not enforced; node identities are used in many ways)
]);

export interface NodeCertificate {
  readonly der: Buffer;
  /** One-line subject, e.g. `C=US, O=Acme, CN=node-1`, for messages. */
  readonly subject: string;
  /** SHA-1 of the DER, lowercase hex: SPIRE's x509pop fingerprint. */
  readonly sha1Hex: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly isCa: boolean;
  /** basicConstraints pathLenConstraint, when set. */
  readonly pathLength: number | undefined;
  /** KeyUsageFlags bits, or null when the certificate has no keyUsage extension. */
  readonly keyUsage: number | null;
  readonly commonNames: readonly string[];
  readonly dnsNames: readonly string[];
  readonly unknownCriticalExtensions: readonly string[];
  readonly node: X509Certificate;
}

/** Parses a DER certificate; throws a plain error (with the library's words) when it cannot. */
export function loadNodeCertificate(der: Buffer): NodeCertificate {
  const node = new X509Certificate(der);
  const parsed = new x509.X509Certificate(der);
  const constraints = parsed.getExtension(x509.BasicConstraintsExtension);
  const keyUsage = parsed.getExtension(x509.KeyUsagesExtension);
  const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
  return Object.freeze({
    der,
    subject: node.subject.split('\n').join(', '),
    sha1Hex: createHash('sha1').update(der).digest('hex'),
    notBeforeMs: parsed.notBefore.getTime(),
    notAfterMs: parsed.notAfter.getTime(),
    isCa: constraints?.ca ?? false,
    pathLength: constraints?.pathLength,
    keyUsage: keyUsage === null ? null : keyUsage.usages,
    commonNames: Object.freeze(parsed.subjectName.getField('CN')),
    dnsNames: Object.freeze(
      san === null ? [] : san.names.items.filter((n) => n.type === 'dns').map((n) => n.value),
    ),
    unknownCriticalExtensions: Object.freeze(
      parsed.extensions.filter((e) => e.critical && !KNOWN_EXTENSIONS.has(e.type)).map((e) => e.type),
    ),
    node,
  });
}

/**
 * Finds a path from `chain[0]` (the leaf) through the other certificates of `chain` (any order) to
 * one of `roots`, every certificate valid at `nowMs`. Returns the CA certificates on the path, the
 * root last. Throws ERR_X509_VERIFY_FAILED whose message says which link failed.
 */
export function verifyNodeChain(
  chain: readonly NodeCertificate[],
  roots: readonly NodeCertificate[],
  nowMs: number,
): NodeCertificate[] {
  const leaf = chain[0];
  if (leaf === undefined) throw verifyError('the chain is empty');
  checkUsable(leaf, 'leaf', nowMs);
  if (leaf.keyUsage !== null && (leaf.keyUsage & x509.KeyUsageFlags.digitalSignature) === 0) {
    throw verifyError(`leaf ${quote(leaf.subject)} has a keyUsage without digitalSignature`);
  }

  const path: NodeCertificate[] = [];
  const used = new Set<number>([0]);
  let current = leaf;
  let currentLabel = `leaf ${quote(leaf.subject)}`;
  for (;;) {
    // Non-self-issued intermediates below the next issuer, for its pathLenConstraint.
    const casBelow = path.length;
    let failure: string | undefined;
    for (const root of roots) {
      if (!isIssuedBy(current, root)) continue;
      const problem = caProblem(root, nowMs, casBelow);
      if (problem === undefined) return [...path, root];
      failure = `root ${quote(root.subject)} ${problem}`;
    }
    let next: NodeCertificate | undefined;
    for (let i = 1; i < chain.length && next === undefined; i++) {
      if (used.has(i) || !isIssuedBy(current, chain[i]!)) continue;
      used.add(i);
      next = chain[i]!;
    }
    if (next === undefined) {
      throw verifyError(
        failure ??
          `no configured root or supplied intermediate signed the ${currentLabel} (its issuer is ${quote(issuerOf(current))})`,
      );
    }
    const label = `intermediate ${quote(next.subject)}`;
    const problem = caProblem(next, nowMs, casBelow);
    if (problem !== undefined) throw verifyError(`${label} ${problem}`);
    path.push(next);
    current = next;
    currentLabel = label;
  }
}

/** Checks the configured roots: each must be a CA. Returns the problem, or undefined. */
export function rootProblem(root: NodeCertificate): string | undefined {
  if (!root.isCa) return 'is not a CA (basicConstraints cA is not true)';
  if (root.keyUsage !== null && (root.keyUsage & x509.KeyUsageFlags.keyCertSign) === 0) {
    return 'has a keyUsage without keyCertSign';
  }
  return undefined;
}

/** Name match first (cheap), then the signature itself. */
function isIssuedBy(child: NodeCertificate, issuer: NodeCertificate): boolean {
  return child.node.checkIssued(issuer.node) && child.node.verify(issuer.node.publicKey);
}

function caProblem(ca: NodeCertificate, nowMs: number, casBelow: number): string | undefined {
  const unusable = usabilityProblem(ca, nowMs);
  if (unusable !== undefined) return unusable;
  const rootFault = rootProblem(ca);
  if (rootFault !== undefined) return rootFault;
  if (ca.pathLength !== undefined && casBelow > ca.pathLength) {
    return `allows ${ca.pathLength} CAs below it, the path has ${casBelow}`;
  }
  return undefined;
}

function checkUsable(cert: NodeCertificate, label: string, nowMs: number): void {
  const problem = usabilityProblem(cert, nowMs);
  if (problem !== undefined) throw verifyError(`${label} ${quote(cert.subject)} ${problem}`);
}

function usabilityProblem(cert: NodeCertificate, nowMs: number): string | undefined {
  if (nowMs < cert.notBeforeMs) return `is not valid until ${iso(cert.notBeforeMs)} (now ${iso(nowMs)})`;
  if (nowMs > cert.notAfterMs) return `expired at ${iso(cert.notAfterMs)} (now ${iso(nowMs)})`;
  if (cert.unknownCriticalExtensions.length > 0) {
    return `has critical extension ${cert.unknownCriticalExtensions.join(', ')}, which this verifier does not process`;
  }
  return undefined;
}

function issuerOf(cert: NodeCertificate): string {
  return cert.node.issuer.split('\n').join(', ');
}

function verifyError(rule: string): SigilError {
  return new SigilError('ERR_X509_VERIFY_FAILED', rule, { reason: 'chain' });
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
