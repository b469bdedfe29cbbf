// The agent API's limits (config section `agent_api`). The listener is on the network and most of
// what reaches it is unauthenticated until a call proves otherwise, so every connection has a
// deadline for each phase, the number of them and of streams on each is capped, and attestation,
// the one call anybody may make, is rate limited per source address; signing, the one expensive
// thing an authenticated agent can ask for, is rate limited per agent.

export interface AgentApiLimits {
  /** A TLS handshake must complete in this time, counted from the TCP accept. */
  readonly handshakeTimeoutMs: number;
  /**
   * A connection with no call in progress is closed after this long (gRPC GOAWAY). An agent's sync
   * stream is a call in progress, so agents are never cut; unary-only clients just reconnect.
   */
  readonly idleTimeoutMs: number;
  /** A call must deliver its first request message in this time, or it ends DEADLINE_EXCEEDED. */
  readonly requestTimeoutMs: number;
  /** Open connections (handshaking included); the next one is closed at once. */
  readonly maxConnections: number;
  /** Open connections from one source IP address. */
  readonly maxConnectionsPerIp: number;
  /** Concurrent calls on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
  /** Attest calls one source IP address may make per second, sustained. */
  readonly attestRatePerSecond: number;
  /** Attest calls one source IP address may make in a burst above the rate. */
  readonly attestBurst: number;
  /** SVIDs an agent may have signed per second, sustained (each CSR, JWT or renewal counts one). */
  readonly signRatePerSecond: number;
  /** SVIDs an agent may have signed in a burst above the rate. */
  readonly signBurst: number;
  /**
   * How long an agent may leave its sync stream unread while updates wait (the stream's write buffer
   * is full and has not drained); then the stream is closed and the agent reconnects and resumes.
   */
  readonly syncDrainTimeoutMs: number;
}

/**
 * 10 s: a TLS handshake takes a few round trips, well under a second even across regions; 10 s
 * leaves room for a loaded server. Node's own default (120 s) let silent TCP connections pile up.
 */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * 60 s: agents hold their connection busy with the sync stream; anything else idle for a minute can
 * reconnect cheaply. Without it, a handshaken but silent connection lived forever.
 */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** 10 s: an agent sends its request right after opening a call; only a stalled client takes longer. */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/**
 * 4096: each agent holds one or two connections, so this serves a few thousand agents, and stays
 * below the 65536 descriptors the systemd unit grants (LimitNOFILE) with room for the datastore.
 */
const DEFAULT_MAX_CONNECTIONS = 4096;
/**
 * 256: enough for agents behind one NAT address, small enough that one host cannot take the
 * whole connection budget.
 */
const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
/**
 * 100: Envoy's edge recommendation, as for the proxy and the Workload API; Node's default (2^32-1)
 * let one connection open any number. An agent holds one sync stream plus its unary calls, and its
 * client (nghttp2) queues calls above the server's limit rather than failing them.
 */
const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/**
 * 5 per second per source address: five times SPIRE's attestation limit per IP, because SPIRE
 * queues callers past it while we refuse them and the agent retries when restarted. A node attests
 * once per boot at most (a saved, valid SVID needs none), and the burst refills in under a minute.
 */
const DEFAULT_ATTEST_RATE_PER_SECOND = 5;
/**
 * 256, the per-IP connection cap: every agent that can connect from one NAT address can attest at
 * once when a whole cluster starts cold. Join tokens cannot be guessed (122 random bits); the rate
 * bounds the attestor work (token lookups, chain checks, Kubernetes token reviews) one address causes.
 */
const DEFAULT_ATTEST_BURST = 256;
/**
 * 500 per second per agent: SPIRE's per-IP signing limit. A steady agent renews each SVID once per
 * half-life, far below it; the rate caps what a compromised agent SVID can make the CA do.
 */
const DEFAULT_SIGN_RATE_PER_SECOND = 500;
/** 1000: two full SignX509Svids batches of a starting agent (it asks for 500 CSRs per call). */
const DEFAULT_SIGN_BURST = 1000;
/**
 * 30 s: a live agent reads its stream within milliseconds, even while it applies a large snapshot;
 * one that has not read for 30 s is stuck or hostile, and holding its updates only costs memory
 * (it catches up from a snapshot or a delta when it reconnects).
 */
const DEFAULT_SYNC_DRAIN_TIMEOUT_MS = 30_000;

export const DEFAULT_AGENT_API_LIMITS: AgentApiLimits = Object.freeze({
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxConnectionsPerIp: DEFAULT_MAX_CONNECTIONS_PER_IP,
  maxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS,
  attestRatePerSecond: DEFAULT_ATTEST_RATE_PER_SECOND,
  attestBurst: DEFAULT_ATTEST_BURST,
  signRatePerSecond: DEFAULT_SIGN_RATE_PER_SECOND,
  signBurst: DEFAULT_SIGN_BURST,
  syncDrainTimeoutMs: DEFAULT_SYNC_DRAIN_TIMEOUT_MS,
});

/** The most max_concurrent_streams may be: SETTINGS values are 32 bits, and nghttp2 takes up to 2^31-1. */
export const MAX_CONCURRENT_STREAMS = 2_147_483_647;
/** Largest gRPC message accepted (a SignX509Svids batch of CSRs is the biggest legitimate one). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** CSRs per SignX509Svids call: twice the agent's own batch size. */
export const MAX_CSRS_PER_CALL = 1000;
