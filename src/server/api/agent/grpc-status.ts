// The one table mapping domain error codes to gRPC status codes for the agent API. It is total (no
// default): a new code does not compile until it is placed here. Internal failures, and anything
// that is not a SigilError, are logged with stack and cause and reach the agent only as "internal
// error"; UNAVAILABLE tells the agent to retry, or to fail over to another server.
import { type ServiceError, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SigilError, type SigilErrorCode } from '../../../spiffe/errors.js';

export const GRPC_STATUS_BY_CODE: Readonly<Record<SigilErrorCode, status>> = {
  // What the agent sent is malformed or breaks a rule.
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
  ERR_JWT_INVALID: status.INVALID_ARGUMENT,
  ERR_JWT_EXPIRED: status.INVALID_ARGUMENT,
  ERR_JWT_AUDIENCE: status.INVALID_ARGUMENT,
  ERR_JWT_ALG: status.INVALID_ARGUMENT,
  ERR_JWT_KEY_NOT_FOUND: status.INVALID_ARGUMENT,
  ERR_JWT_SIGNATURE: status.INVALID_ARGUMENT,
  ERR_BUNDLE_INVALID: status.INVALID_ARGUMENT,
  ERR_INPUT_INVALID: status.INVALID_ARGUMENT,
  ERR_POLICY_INVALID: status.INVALID_ARGUMENT,
  // Who the agent is. A join token that is unknown or expired is refused evidence, as in SPIRE.
  ERR_UNAUTHENTICATED: status.UNAUTHENTICATED,
  ERR_X509_VERIFY_FAILED: status.UNAUTHENTICATED,
  ERR_PERMISSION_DENIED: status.PERMISSION_DENIED,
  ERR_TOKEN_NOT_FOUND: status.PERMISSION_DENIED,
  ERR_TOKEN_EXPIRED: status.PERMISSION_DENIED,
  ERR_ENTRY_NOT_FOUND: status.NOT_FOUND,
  ERR_NODE_NOT_FOUND: status.NOT_FOUND,
  ERR_BUNDLE_NOT_FOUND: status.NOT_FOUND,
  ERR_AUTHORITY_NOT_FOUND: status.NOT_FOUND,
  ERR_ENTRY_DUPLICATE: status.ALREADY_EXISTS,
  ERR_BUNDLE_DUPLICATE: status.ALREADY_EXISTS,
  ERR_AUTHORITY_STATE: status.FAILED_PRECONDITION,
  // A concurrent write won: the call may be retried as a whole.
  ERR_REVISION_CONFLICT: status.ABORTED,
  ERR_RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  ERR_NOT_IMPLEMENTED: status.UNIMPLEMENTED,
  // The CA cannot sign now (none active, expired, upstream unusable): not the agent's fault.
  ERR_CA_UNAVAILABLE: status.UNAVAILABLE,
  ERR_UPSTREAM_INVALID: status.UNAVAILABLE,
  ERR_UNAVAILABLE: status.UNAVAILABLE,
  // The server's own environment failed.
  ERR_DATASTORE: status.INTERNAL,
  ERR_CONFIG_INVALID: status.INTERNAL,
  ERR_SOCKET_UNSAFE: status.INTERNAL,
  ERR_DATA_DIR_LOCKED: status.INTERNAL,
};

export const INTERNAL_DETAILS = 'internal error; see the server log';

export function toServiceError(
  err: unknown,
  logger: Logger,
  context: Record<string, unknown>,
): Partial<ServiceError> {
  const code = err instanceof SigilError ? GRPC_STATUS_BY_CODE[err.code] : status.INTERNAL;
  if (code === status.INTERNAL) {
    // `err` through pino's serializer: the stack and every `cause` below it, not just the message.
    logger.error({ ...context, err }, 'Agent API call failed');
    return { code, details: INTERNAL_DETAILS };
  }
  const known = err as SigilError;
  // Rate-limit refusals come in floods; the limiter logs one line per episode instead.
  if (known.code !== 'ERR_RESOURCE_EXHAUSTED') {
    logger.warn({ ...context, code: known.code, reason: known.message }, 'Agent API call refused');
  }
  return { code, details: known.message };
}

/**
 * The text of a per-item failure inside a successful answer (one CSR of a batch): the message of an
 * agent-facing error, or "internal error" after logging the failure in full.
 */
export function itemErrorText(err: unknown, logger: Logger, context: Record<string, unknown>): string {
  if (err instanceof SigilError && GRPC_STATUS_BY_CODE[err.code] !== status.INTERNAL) return err.message;
  logger.error({ ...context, err }, 'Agent API item failed');
  return INTERNAL_DETAILS;
}
