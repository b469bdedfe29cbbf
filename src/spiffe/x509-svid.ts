// X509-SVIDs (spiffe-facts.md §2), by responsibility: minting leaves (x509-svid-mint.ts), reading
// CSRs (x509-csr.ts), verifying chains (x509-svid-verify.ts) and reading certificates
// (x509-certificate.ts). This file is the concept's public surface; importers use these names.
export { checkDnsName } from './dns-name.js';
export { type CertificateDescription, describeCertificate } from './x509-certificate.js';
export { type ParsedCsr, parseCsr } from './x509-csr.js';
export {
  type MintX509SvidParams,
  mintX509Svid,
  prepareIssuer,
  type X509Issuer,
} from './x509-svid-mint.js';
export { type VerifiedX509Svid, verifyX509Svid } from './x509-svid-verify.js';
