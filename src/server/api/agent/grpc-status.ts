// The one table mapping domain error codes to gRPC status codes for the agent API. Internal
// failures are logged in full and reach the agent only as "internal error".
import { type ServiceError, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SigilError, type SigilErrorCode } from '../../../spiffe/errors.js';

const STATUS_BY_CODE: Partial<Record<SigilErrorCode, status>> = {
  ERR_UNAUTHENTICATED: status.UNAUTHENTICATED,
  ERR_PERMISSION_DENIED: status.PERMISSION_DENIED,
  ERR_RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  ERR_ENTRY_NOT_FOUND: status.NOT_FOUND,
  ERR_NODE_NOT_FOUND: status.NOT_FOUND,
  ERR_BUNDLE_NOT_FOUND: status.NOT_FOUND,
  ERR_CA_UNAVAILABLE: status.UNAVAILABLE,
  ERR_UNAVAILABLE: status.UNAVAILABLE,
  ERR_DATASTORE: status.INTERNAL,
  ERR_NOT_IMPLEMENTED: status.UNIMPLEMENTED,
};

export function toServiceError(
  err: unknown,
  logger: Logger,
  context: Record<string, unknown>,
): Partial<ServiceError> {
  if (err instanceof SigilError) {
    const code = STATUS_BY_CODE[err.code] ?? status.INVALID_ARGUMENT;
    if (code === status.INTERNAL) {
      logger.error({ ...context, err }, 'Agent API call failed');
      return { code, details: 'internal error; see the server log' };
    }
    // Rate-limit refusals come in floods; the limiter logs one line per episode instead.
    if (err.code !== 'ERR_RESOURCE_EXHAUSTED') {
      logger.warn({ ...context, code: err.code, reason: err.message }, 'Agent API call refused');
    }
    return { code, details: err.message };
  }
  logger.error({ ...context, err }, 'Agent API call failed');
  return { code: status.INTERNAL, details: 'internal error; see the server log' };
}
