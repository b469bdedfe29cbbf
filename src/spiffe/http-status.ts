// The one table mapping domain error codes to HTTP status codes, for every HTTP edge that answers
// with our errors (the server's admin REST API, the agent's admin socket). Domain code never knows HTTP.
// It is total (no default): a new code does not compile until it is placed here, so nothing falls
// through to "the caller's fault" by accident.
import type { SigilErrorCode } from './errors.js';

const BAD_REQUEST = 400;
const UNAUTHORIZED = 401;
const FORBIDDEN = 403;
const NOT_FOUND = 404;
const CONFLICT = 409;
const TOO_MANY_REQUESTS = 429;
/** The server's own fault: logged with stack and cause, answered with a generic message. */
const INTERNAL = 500;
const NOT_IMPLEMENTED = 501;
/** The CA cannot sign right now (none active, expired, upstream unusable): the caller may retry. */
const UNAVAILABLE = 503;

export const HTTP_STATUS_BY_CODE: Readonly<Record<SigilErrorCode, number>> = {
  // What the caller sent is malformed or breaks a rule.
  ERR_SPIFFE_ID_INVALID: BAD_REQUEST,
  ERR_SPIFFE_ID_RESERVED: BAD_REQUEST,
  ERR_TRUST_DOMAIN_INVALID: BAD_REQUEST,
  ERR_SELECTOR_INVALID: BAD_REQUEST,
  ERR_DURATION_INVALID: BAD_REQUEST,
  ERR_PEM_INVALID: BAD_REQUEST,
  ERR_DER_INVALID: BAD_REQUEST,
  ERR_KEY_INVALID: BAD_REQUEST,
  ERR_CSR_INVALID: BAD_REQUEST,
  ERR_X509_SVID_INVALID: BAD_REQUEST,
  ERR_JWT_INVALID: BAD_REQUEST,
  ERR_JWT_EXPIRED: BAD_REQUEST,
  ERR_JWT_AUDIENCE: BAD_REQUEST,
  ERR_JWT_ALG: BAD_REQUEST,
  ERR_JWT_KEY_NOT_FOUND: BAD_REQUEST,
  ERR_JWT_SIGNATURE: BAD_REQUEST,
  ERR_BUNDLE_INVALID: BAD_REQUEST,
  ERR_INPUT_INVALID: BAD_REQUEST,
  ERR_POLICY_INVALID: BAD_REQUEST,
  // Who the caller is.
  ERR_UNAUTHENTICATED: UNAUTHORIZED,
  ERR_X509_VERIFY_FAILED: UNAUTHORIZED,
  ERR_PERMISSION_DENIED: FORBIDDEN,
  // What the caller named does not exist (an expired token is as good as gone: pruning removes it).
  ERR_ENTRY_NOT_FOUND: NOT_FOUND,
  ERR_NODE_NOT_FOUND: NOT_FOUND,
  ERR_TOKEN_NOT_FOUND: NOT_FOUND,
  ERR_TOKEN_EXPIRED: NOT_FOUND,
  ERR_BUNDLE_NOT_FOUND: NOT_FOUND,
  ERR_AUTHORITY_NOT_FOUND: NOT_FOUND,
  // The request clashes with the current state.
  ERR_ENTRY_DUPLICATE: CONFLICT,
  ERR_BUNDLE_DUPLICATE: CONFLICT,
  ERR_AUTHORITY_STATE: CONFLICT,
  ERR_REVISION_CONFLICT: CONFLICT,
  ERR_RESOURCE_EXHAUSTED: TOO_MANY_REQUESTS,
  ERR_NOT_IMPLEMENTED: NOT_IMPLEMENTED,
  ERR_CA_UNAVAILABLE: UNAVAILABLE,
  ERR_UPSTREAM_INVALID: UNAVAILABLE,
  ERR_UNAVAILABLE: UNAVAILABLE,
  // The server's own environment failed; nothing the caller can change.
  ERR_DATASTORE: INTERNAL,
  ERR_CONFIG_INVALID: INTERNAL,
  ERR_SOCKET_UNSAFE: INTERNAL,
  ERR_DATA_DIR_LOCKED: INTERNAL,
};

export function httpStatusFor(code: SigilErrorCode): number {
  return HTTP_STATUS_BY_CODE[code];
}

/** Whether the status is the server's own fault, whose details stay in the log. */
export function isInternalHttpStatus(status: number): boolean {
  return status === INTERNAL;
}
