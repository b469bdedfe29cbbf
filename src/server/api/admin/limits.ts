// The admin REST listeners' limits (config section `admin_api`). Node and fastify leave them open:
// a TLS handshake may take 120 s, fastify sets requestTimeout and the socket timeout to 0 (none) and
// keep-alive to 72 s, and nothing caps connections, so silent or slow clients could hold descriptors
// for minutes or forever. The names and meanings match `agent_api` and the proxy's `limits`.

export interface AdminApiLimits {
  /** mTLS listener: a TLS handshake must complete in this time, counted from the TCP accept. */
  readonly handshakeTimeoutMs: number;
  /** From a connection's (or request's) first byte to the end of the request head. */
  readonly headerTimeoutMs: number;
  /** From a request's first byte to the end of its body. */
  readonly requestTimeoutMs: number;
  /**
   * Keep-alive between requests; also any connection on which nothing moves either way for this
   * long (a client that stops reading its answer).
   */
  readonly idleTimeoutMs: number;
  /** mTLS listener: open connections, handshaking ones included; the next one is closed at once. */
  readonly maxConnections: number;
}

/** 10 s, as on the agent API: a handshake takes a few round trips; Node's 120 s let silent sockets pile up. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * 10 s: Envoy's recommended request_headers_timeout. The CLI and scripts send a head in one write;
 * only a slowloris client dribbles it (Node's default of 60 s applied, checked every 30 s).
 */
const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
/**
 * 30 s: admin bodies are at most 1 MiB (ADMIN_BODY_LIMIT_BYTES), which 30 s carries at 35 KB/s;
 * fastify's 0 meant a body could trickle in forever.
 */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * 60 s, as on the agent API and the proxy: automation reusing its mTLS connection keeps it across
 * short lulls, while an idle or stalled connection gives its descriptor back within a minute.
 */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/**
 * 128: the mTLS listener serves a few operators and automation jobs, one or two connections each;
 * 128 leaves room for parallel CLI runs and keeps a flood to a small share of the descriptors the
 * server needs for the agent API (4096) and the datastore.
 */
const DEFAULT_MAX_CONNECTIONS = 128;

export const DEFAULT_ADMIN_API_LIMITS: AdminApiLimits = Object.freeze({
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  headerTimeoutMs: DEFAULT_HEADER_TIMEOUT_MS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
});
