// Which requests and which failures the retry layer may repeat: pure decisions, no I/O.
import { isSigilError } from '../../spiffe/errors.js';
import { isUpstreamIdentityFailure, ProxyError } from '../errors.js';
import type { ProxyRequest } from './exchange.js';

/** RFC 9110 §9.2.2: methods whose repetition has the same effect as one request. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Linkerd's limit: a body up to this size is kept to send again; a larger one streams and is not retried. */
export const MAX_RETRY_BODY_BYTES = 64 * 1024;

export interface RetryPolicy {
  /** Tries in all, the first included; 1 = no retries. */
  readonly maxAttempts: number;
  /** Response statuses worth another try. */
  readonly onStatuses: ReadonlySet<number>;
  /** The service says every call is safe to repeat, whatever its method. */
  readonly nonIdempotent: boolean;
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
}

/** Why a try failed in a way worth repeating; also the `reason` label of the retry metric. */
export type RetryReason = 'connect' | 'identity' | 'reset' | 'timeout' | `status-${number}`;

/**
 * Whether `request` may be sent more than once: an idempotent method, an `Idempotency-Key`, or a
 * service that allows any method. A POST with neither is never repeated, not even once.
 */
export function isRepeatable(request: ProxyRequest, policy: RetryPolicy): boolean {
  return IDEMPOTENT_METHODS.has(request.method) || request.context.hasIdempotencyKey || policy.nonIdempotent;
}

/**
 * The retry reason of a try that failed with `err` before any response byte, or null when the
 * failure must go to the caller. `wasSent` is false for failures that happen before the request
 * left (a refused or unverified connection): those are the only ones retried when an outer sidecar
 * already retries the call chain, since they never reach an app and so cannot multiply its load.
 */
export function retryReasonOf(err: unknown): { reason: RetryReason; wasSent: boolean } | null {
  if (err instanceof ProxyError) {
    // A try that ran out of its own time may be tried again; every other refusal of ours is final.
    return err.reason === 'timeout' ? { reason: 'timeout', wasSent: true } : null;
  }
  if (isSigilError(err)) {
    if (err.code === 'ERR_UNAVAILABLE') return { reason: 'connect', wasSent: false };
    // The endpoint presented the wrong or an invalid identity: nothing was sent; try another one.
    return isUpstreamIdentityFailure(err) ? { reason: 'identity', wasSent: false } : null;
  }
  const code = (err as { code?: unknown } | null)?.code;
  // The connection closed or reset before the response began (undici reports the close as UND_ERR_SOCKET).
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE')
    return { reason: 'reset', wasSent: true };
  return null;
}
