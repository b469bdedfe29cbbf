// Whether the agent's own SVID was signed by an authority the server has tainted. The server's
// self-signed CA hands out bare leaves (no CA in the chain), so besides the chain's own certificates
// the leaf's signature is checked against each tainted bundle authority.
import { X509Certificate } from 'node:crypto';
import { describeCertificate } from '../../spiffe/x509-svid.js';

/**
 * True when `chain` passes through, or its leaf was signed by, an authority of `authorities` whose
 * subject key ID (hex) is in `tainted`.
 */
export function isSignedByTainted(
  chain: readonly Buffer[],
  authorities: readonly Buffer[],
  tainted: ReadonlySet<string>,
): boolean {
  if (tainted.size === 0 || chain.length === 0) return false;
  const isTainted = (der: Buffer) => tainted.has(describeCertificate(der).subjectKeyIdHex ?? '');
  if (chain.slice(1).some(isTainted)) return true;
  const leaf = new X509Certificate(chain[0]!);
  return authorities.filter(isTainted).some((der) => {
    const authority = new X509Certificate(der);
    return leaf.checkIssued(authority) && leaf.verify(authority.publicKey);
  });
}
