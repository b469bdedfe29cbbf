// Whether the agent's own SVID was signed by an authority the server has tainted. The server's
// self-signed CA hands out bare leaves (no CA in the chain), so besides the chain's own certificates
// the leaf's signature is checked against each tainted bundle authority.
import { X509Certificate } from 'node:crypto';
import { issuingAuthority } from '../../spiffe/x509-authority.js';
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
  const taintedAuthorities = authorities.filter(isTainted).map((der) => new X509Certificate(der));
  return issuingAuthority(chain[0]!, taintedAuthorities) !== undefined;
}
