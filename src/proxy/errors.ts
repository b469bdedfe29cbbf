// The proxy's edge table: which HTTP status and `x-sigil-error` value a failure becomes. Domain
// code throws SigilErrors with codes and reasons; only this file knows HTTP (STYLE.md §6).
import { isSigilError, SigilError } from '../spiffe/errors.js';

export interface ProxyErrorResponse {
  readonly status: number;
  /** The `x-sigil-error` header value: stable, short, safe to show a client. */
  readonly error: string;
}

/** Header that names why the proxy, not the app, answered. */
export const SIGIL_ERROR_HEADER = 'x-sigil-error';

/**
 * Requests the proxy refuses itself, before they reach the app or upstream; the reason is also
 * the `x-sigil-error` value and the metric label.
 */
export const REFUSAL_STATUS = {
  'bad-path': 400,
  'duplicate-host': 400,
  'bad-request': 400,
  'header-too-large': 431,
  'header-timeout': 408,
  'request-timeout': 408,
  /** Inbound rate limits (ratelimit/), with Retry-After; counted in sigil_proxy_rate_limited_total. */
  'rate-limited': 429,
} as const satisfies Record<string, number>;

/**
 * Failures the proxy answers itself on the outbound request path, from the layers around the relay
 * (src/proxy/resilience): the reason is the `x-sigil-error` value and the metric label. Overload and
 * refusals are 503 (the caller may try elsewhere or later), time running out is 504, as Envoy does.
 */
export const PROXY_ERROR_STATUS = {
  timeout: 504,
  'deadline-exceeded': 504,
  overloaded: 503,
  'circuit-open': 503,
  'retry-budget-exhausted': 503,
  'no-healthy-endpoint': 503,
} as const satisfies Record<string, number>;

export type ProxyErrorReason = keyof typeof PROXY_ERROR_STATUS;

/**
 * A request the proxy answers itself instead of the upstream: a layer rejects with one (or aborts
 * with one as the reason) and the listener writes `status` with `x-sigil-error: reason`. A
 * SigilError like any other (code ERR_UNAVAILABLE), so logs and callers switch on code and reason.
 */
export class ProxyError extends SigilError {
  declare readonly reason: ProxyErrorReason;

  constructor(reason: ProxyErrorReason, message: string, options: { cause?: unknown } = {}) {
    super('ERR_UNAVAILABLE', message, { reason, cause: options.cause });
  }

  get status(): number {
    return PROXY_ERROR_STATUS[this.reason];
  }
}

/** Codes of an upstream whose certificate did not verify (UpstreamConnector, ProxyIdentity.verifyPeer). */
const INVALID_IDENTITY_CODES: ReadonlySet<string> = new Set([
  'ERR_UNAUTHENTICATED',
  'ERR_X509_SVID_INVALID',
  'ERR_X509_VERIFY_FAILED',
  'ERR_BUNDLE_NOT_FOUND',
]);

/**
 * The upstream presented an identity we refuse: one that does not verify, or a SPIFFE ID outside
 * the accepted list. Nothing was sent to it; another endpoint may do.
 */
export function isUpstreamIdentityFailure(err: SigilError): boolean {
  return (
    (err.code === 'ERR_PERMISSION_DENIED' && err.reason === 'server-id') ||
    INVALID_IDENTITY_CODES.has(err.code)
  );
}

/** undici's codes for an upstream that was too slow, as opposed to one that failed. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export function proxyErrorResponse(err: unknown): ProxyErrorResponse {
  if (err instanceof ProxyError) return { status: err.status, error: err.reason };
  if (isSigilError(err)) {
    switch (err.code) {
      case 'ERR_PERMISSION_DENIED':
        // A server ID outside the accepted list is the upstream's fault, not the caller's.
        return isUpstreamIdentityFailure(err)
          ? { status: 502, error: 'upstream-identity-mismatch' }
          : { status: 403, error: 'forbidden' };
      case 'ERR_UNAUTHENTICATED':
      case 'ERR_X509_SVID_INVALID':
      case 'ERR_X509_VERIFY_FAILED':
      case 'ERR_BUNDLE_NOT_FOUND':
        return { status: 502, error: 'upstream-identity-invalid' };
      case 'ERR_UNAVAILABLE':
        return err.reason === 'timeout'
          ? { status: 504, error: 'upstream-timeout' }
          : { status: 503, error: 'upstream-unavailable' };
      default:
        return { status: 502, error: 'upstream-failed' };
    }
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return { status: 504, error: 'upstream-timeout' };
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH') {
    return { status: 503, error: 'upstream-unavailable' };
  }
  return { status: 502, error: 'upstream-failed' };
}
