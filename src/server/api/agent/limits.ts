// The agent API's limits (config section `agent_api`). The listener is on the network and most of
// what reaches it is unauthenticated until a call proves otherwise, so every connection has a
// deadline for each phase and the number of them is capped; signing, the one expensive thing an
// authenticated agent can ask for, is rate limited per agent.

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
  /** SVIDs an agent may have signed per second, sustained (each CSR, JWT or renewal counts one). */
  readonly signRatePerSecond: number;
  /** SVIDs an agent may have signed in a burst above the rate. */
  readonly signBurst: number;
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
 * 500 per second per agent: SPIRE's per-IP signing limit. A steady agent renews each SVID once per
 * half-life, far below it; the rate caps what a compromised agent SVID can make the CA do.
 */
const DEFAULT_SIGN_RATE_PER_SECOND = 500;
/** 1000: two full SignX509Svids batches of a starting agent (it asks for 500 CSRs per call). */
const DEFAULT_SIGN_BURST = 1000;

export const DEFAULT_AGENT_API_LIMITS: AgentApiLimits = Object.freeze({
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxConnectionsPerIp: DEFAULT_MAX_CONNECTIONS_PER_IP,
  signRatePerSecond: DEFAULT_SIGN_RATE_PER_SECOND,
  signBurst: DEFAULT_SIGN_BURST,
});

/** Largest gRPC message accepted (a SignX509Svids batch of CSRs is the biggest legitimate one). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** CSRs per SignX509Svids call: twice the agent's own batch size. */
export const MAX_CSRS_PER_CALL = 1000;
