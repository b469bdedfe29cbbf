// The one table mapping domain error codes to admin REST status codes. Domain code never knows HTTP.
import type { SigilErrorCode } from '../../spiffe/errors.js';

const STATUS_BY_CODE: Partial<Record<SigilErrorCode, number>> = {
  ERR_ENTRY_NOT_FOUND: 404,
  ERR_NODE_NOT_FOUND: 404,
  ERR_TOKEN_NOT_FOUND: 404,
  ERR_BUNDLE_NOT_FOUND: 404,
  ERR_AUTHORITY_NOT_FOUND: 404,
  ERR_ENTRY_DUPLICATE: 409,
  ERR_AUTHORITY_STATE: 409,
  ERR_BUNDLE_DUPLICATE: 409,
  ERR_REVISION_CONFLICT: 409,
  ERR_UNAUTHENTICATED: 401,
  ERR_PERMISSION_DENIED: 403,
  ERR_RESOURCE_EXHAUSTED: 429,
  ERR_CA_UNAVAILABLE: 503,
  ERR_UNAVAILABLE: 503,
  ERR_DATASTORE: 500,
  ERR_NOT_IMPLEMENTED: 501,
};

/** Anything not listed is the caller's bad input (400); internal failures are listed explicitly. */
export function httpStatusFor(code: SigilErrorCode): number {
  return STATUS_BY_CODE[code] ?? 400;
}
