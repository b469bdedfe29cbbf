// JWT-SVIDs (spiffe-facts.md §3), by responsibility: the algorithm table (jwt-algs.ts), audience
// bounds (jwt-audience.ts), minting (jwt-svid-mint.ts) and validating (jwt-svid-validate.ts). This
// file is the concept's public surface; importers use these names.
export type { JwtAlg } from './jwt-algs.js';
export { checkJwtAudience, MAX_JWT_AUDIENCE_BYTES, MAX_JWT_AUDIENCES } from './jwt-audience.js';
export { type MintJwtSvidParams, mintJwtSvid } from './jwt-svid-mint.js';
export {
  MAX_JWT_SVID_BYTES,
  type ValidatedJwtSvid,
  type ValidateJwtSvidOptions,
  validateJwtSvid,
} from './jwt-svid-validate.js';
