// The one table mapping domain error codes to gRPC status codes for the Workload API (spiffe-facts.md
// §5.3): INVALID_ARGUMENT for a bad request or a token that fails validation (clients do not retry),
// PERMISSION_DENIED for a caller with no identity, UNAVAILABLE for "not now" (clients back off and
// retry), INTERNAL for the agent's own failures. It is total (no default): a new code does not
// compile until it is placed here.
import { status } from '@grpc/grpc-js';
import type { SigilErrorCode } from '../../spiffe/errors.js';

export const WORKLOAD_STATUS_BY_CODE: Readonly<Record<SigilErrorCode, status>> = {
  // The request, or the token it asks us to validate, is at fault.
  ERR_SPIFFE_ID_INVALID: status.INVALID_ARGUMENT,
  ERR_SPIFFE_ID_RESERVED: status.INVALID_ARGUMENT,
  ERR_TRUST_DOMAIN_INVALID: status.INVALID_ARGUMENT,
  ERR_SELECTOR_INVALID: status.INVALID_ARGUMENT,
  ERR_DURATION_INVALID: status.INVALID_ARGUMENT,
  ERR_PEM_INVALID: status.INVALID_ARGUMENT,
  ERR_DER_INVALID: status.INVALID_ARGUMENT,
  ERR_KEY_INVALID: status.INVALID_ARGUMENT,
  ERR_CSR_INVALID: status.INVALID_ARGUMENT,
  ERR_X509_SVID_INVALID: status.INVALID_ARGUMENT,
  ERR_X509_VERIFY_FAILED: status.INVALID_ARGUMENT,
  ERR_JWT_INVALID: status.INVALID_ARGUMENT,
  ERR_JWT_EXPIRED: status.INVALID_ARGUMENT,
  ERR_JWT_AUDIENCE: status.INVALID_ARGUMENT,
  ERR_JWT_ALG: status.INVALID_ARGUMENT,
  ERR_JWT_KEY_NOT_FOUND: status.INVALID_ARGUMENT,
  ERR_JWT_SIGNATURE: status.INVALID_ARGUMENT,
  ERR_BUNDLE_INVALID: status.INVALID_ARGUMENT,
  // ValidateJWTSVID of a token from a trust domain we hold no bundle for: the token fails validation.
  ERR_BUNDLE_NOT_FOUND: status.INVALID_ARGUMENT,
  ERR_INPUT_INVALID: status.INVALID_ARGUMENT,
  ERR_POLICY_INVALID: status.INVALID_ARGUMENT,
  // The Workload API authenticates nobody: a caller we cannot vouch for simply has no identity.
  ERR_PERMISSION_DENIED: status.PERMISSION_DENIED,
  ERR_UNAUTHENTICATED: status.PERMISSION_DENIED,
  ERR_NOT_IMPLEMENTED: status.UNIMPLEMENTED,
  // Not now: the agent is not ready, overloaded, or its server cannot sign; retrying is right.
  ERR_UNAVAILABLE: status.UNAVAILABLE,
  ERR_RESOURCE_EXHAUSTED: status.UNAVAILABLE,
  ERR_CA_UNAVAILABLE: status.UNAVAILABLE,
  ERR_UPSTREAM_INVALID: status.UNAVAILABLE,
  // Nothing a workload can cause: the agent's own state or environment failed.
  ERR_ENTRY_DUPLICATE: status.INTERNAL,
  ERR_ENTRY_NOT_FOUND: status.INTERNAL,
  ERR_NODE_NOT_FOUND: status.INTERNAL,
  ERR_TOKEN_NOT_FOUND: status.INTERNAL,
  ERR_TOKEN_EXPIRED: status.INTERNAL,
  ERR_BUNDLE_DUPLICATE: status.INTERNAL,
  ERR_REVISION_CONFLICT: status.INTERNAL,
  ERR_AUTHORITY_NOT_FOUND: status.INTERNAL,
  ERR_AUTHORITY_STATE: status.INTERNAL,
  ERR_DATASTORE: status.INTERNAL,
  ERR_CONFIG_INVALID: status.INTERNAL,
  ERR_SOCKET_UNSAFE: status.INTERNAL,
  ERR_DATA_DIR_LOCKED: status.INTERNAL,
};
