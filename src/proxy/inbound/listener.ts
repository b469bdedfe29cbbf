// The inbound listener: terminates mTLS in front of the local app, authorizes, and forwards. `http`
// is relayed per request through one keep-alive undici Pool to the app (http.ts: normalized path,
// identity headers set from the verified peer); `tcp` and `http2` are opaque pipes authorized once
// per connection, since relaying HTTP/2 per stream costs ~6x the CPU of carrying the app's h2c
// inside the pipe (proxy-performance-notes.md). An `http2` connection is relayed stream by stream
// (h2-relay.ts) only when the policy for the port looks at methods or paths. Every connection is
// under the listener's limits (limits.ts): a cap, the handshake timeout, then the HTTP timeouts or
// the pipe's idle timeout; its optional rate limits (ratelimit/) count requests, or connections of
// an opaque pipe. It does not retry, balance or time out the app: those are layers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock } from '../../spiffe/clock.js';
import { DirectReads } from '../direct-reads.js';
import { capConnections, closeWhenIdle, createListenerGuard, type ListenerGuard } from '../guard.js';
import { createGuardedHttpServer } from '../guarded-http.js';
import { Pool } from '../http-relay.js';
import type { ProxyIdentity, VerifiedPeer } from '../identity.js';
import { DEFAULT_LIMITS, type ListenerLimits } from '../limits.js';
import type { ProxyLogger } from '../logger.js';
import { type ProxyMetrics, seriesMemo } from '../metrics.js';
import { pipeSockets } from '../pipe.js';
import { DEFAULT_PATH_NORMALIZATION, type PathNormalization } from '../policy/normalize.js';
import { createRateLimitGate, type RateLimitConfig, type RateLimitGate } from '../ratelimit/index.js';
import type { RequestTracer } from '../tracing/request-tracer.js';
import { createAcceptServer } from './accept.js';
import { type Authorizer, type EnforcementContext, enforce } from './authorize.js';
import { createStreamRelay } from './h2-relay.js';
import { handleRequest, handleUpgrade, type InboundHttpContext } from './http.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface InboundOptions {
  /** Names the listener in logs and metric labels. */
  readonly name: string;
  /** Where callers' sidecars connect. Port 0 picks a free port (see `address`). */
  readonly listen: HostPort;
  readonly protocol: 'http' | 'tcp' | 'http2';
  /** The local app, reached in plaintext. */
  readonly app: HostPort;
  /** `strict` refuses plaintext callers; `permissive` lets them through with principal null. */
  readonly mode: 'strict' | 'permissive';
  readonly identity: ProxyIdentity;
  readonly authorizer: Authorizer;
  readonly metrics: ProxyMetrics;
  readonly logger: ProxyLogger;
  /** Arms handshake timeouts and paces refusal logs. Defaults to the system clock. */
  readonly clock?: Clock;
  /** Connection cap and timeouts. Defaults to DEFAULT_LIMITS. */
  readonly limits?: ListenerLimits;
  /** How ambiguous request paths are treated (http and the HTTP/2 relay). Defaults to refusing them. */
  readonly pathNormalization?: PathNormalization;
  /** Request rates (opaque listeners: connection rates) per listener and per caller. Defaults to none. */
  readonly rateLimit?: RateLimitConfig | null;
  /** Spans and access log lines (tracing/); null or absent: off, at no cost per request. */
  readonly tracer?: RequestTracer | null;
}

export interface InboundListener {
  readonly address: AddressInfo;
  /**
   * Checks the open opaque (tcp, http2) connections against the policy now in force: closes those
   * it denies, and HTTP/2 pipes whose port now needs per-request decisions (their callers
   * reconnect and are relayed stream by stream). Call it after every policy change.
   */
  reauthorize(): void;
  /** Stops accepting, ends open connections and the app pool. */
  close(): Promise<void>;
}

/** Keep-alive to the app: idle app connections are dropped after this (undici's default is 4s). */
const APP_KEEP_ALIVE_MS = 30_000;

export async function startInbound(options: InboundOptions): Promise<InboundListener> {
  const { name, identity, metrics, logger } = options;
  const clock = options.clock ?? systemClock;
  const limits = options.limits ?? DEFAULT_LIMITS;
  const guard = createListenerGuard({ listener: name, limits, metrics, logger, clock });
  const enforcement: EnforcementContext = {
    listener: name,
    authorizer: options.authorizer,
    metrics,
    logger,
    ownId: () => identity.spiffeId,
  };
  const pathNormalization = options.pathNormalization ?? DEFAULT_PATH_NORMALIZATION;
  const rateLimiter =
    options.rateLimit == null
      ? null
      : createRateLimitGate({
          listener: name,
          config: options.rateLimit,
          clock,
          metrics,
          logger,
          ownId: () => identity.spiffeId,
        });
  const peers = new WeakMap<Duplex, VerifiedPeer>();
  /** Open opaque pipes and their callers (null: plaintext). */
  const pipes = new Map<Duplex, string | null>();
  let onSecure: (socket: Duplex, peer: VerifiedPeer) => void;
  let onPlaintext: (socket: Socket) => void;
  let closeProtocol: () => Promise<void>;

  if (options.protocol === 'http') {
    const pool = new Pool(`http://${options.app.host}:${options.app.port}`, {
      pipelining: 1,
      keepAliveTimeout: APP_KEEP_ALIVE_MS,
    });
    const http = createGuardedHttpServer(guard, { emittedConnections: true });
    const context: InboundHttpContext = {
      ...options,
      enforcement,
      guard,
      pathNormalization,
      clock,
      rateLimiter,
      tracer: options.tracer ?? null,
      seriesOf: seriesMemo(metrics, name, 'inbound'),
    };
    http.on('request', (req: IncomingMessage, res: ServerResponse) =>
      handleRequest(req, res, peers.get(req.socket) ?? null, pool, context),
    );
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      handleUpgrade(req, socket, head, peers.get(req.socket) ?? null, context),
    );
    onSecure = (socket, peer) => {
      peers.set(socket, peer);
      http.emit('connection', socket);
    };
    onPlaintext = (socket) => {
      http.emit('connection', socket);
      // The accept path paused it to peek; node:http does not resume a paused socket by itself.
      socket.resume();
    };
    closeProtocol = async () => {
      // close() also stops node:http's timeout sweep; the server itself never listened.
      http.close();
      http.closeAllConnections();
      await pool.destroy();
    };
  } else if (options.protocol === 'http2') {
    const relay = createStreamRelay({
      listener: name,
      app: options.app,
      logger,
      guard,
      pathNormalization,
      tracer: options.tracer ?? null,
      enforce: (request) => enforce(enforcement, request),
      rateLimiter,
      ownId: () => identity.spiffeId,
      seriesFor: (principal) =>
        metrics.requestSeries(name, 'inbound', principal ?? 'plaintext', identity.spiffeId),
    });
    // Decided per connection, under the policy in force when it opens.
    const perStream = () => options.authorizer.needsRequestDetails(options.app.port);
    onSecure = (socket, peer) =>
      perStream()
        ? relay.accept(socket, peer)
        : pipeToApp(socket, peer.spiffeId, pipes, options, enforcement, guard, rateLimiter);
    onPlaintext = (socket) => {
      if (!perStream()) return pipeToApp(socket, null, pipes, options, enforcement, guard, rateLimiter);
      relay.accept(socket, null);
      socket.resume();
    };
    closeProtocol = () => relay.close();
  } else {
    onSecure = (socket, peer) =>
      pipeToApp(socket, peer.spiffeId, pipes, options, enforcement, guard, rateLimiter);
    onPlaintext = (socket) => pipeToApp(socket, null, pipes, options, enforcement, guard, rateLimiter);
    closeProtocol = async () => {};
  }

  const { server, sockets } = createAcceptServer({
    listener: name,
    mode: options.mode,
    identity,
    metrics,
    logger,
    clock,
    handshakeTimeoutMs: limits.handshakeTimeoutMs,
    onSecure,
    onPlaintext,
  });
  capConnections(server, guard);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  logger.info(
    { listener: name, protocol: options.protocol, mode: options.mode, port: address.port, app: options.app },
    'Inbound listener started',
  );
  return {
    address,
    reauthorize() {
      const port = options.app.port;
      const toRelay = options.protocol === 'http2' && options.authorizer.needsRequestDetails(port);
      for (const [socket, principal] of pipes) {
        if (toRelay) {
          logger.info(
            { listener: name, source_id: principal },
            'Closing an HTTP/2 pipe: the policy now decides per request',
          );
          socket.destroy();
        } else if (!enforce(enforcement, { principal, port, protocol: 'tcp' }).allow) {
          socket.destroy();
        }
      }
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closeProtocol();
      await closed;
    },
  };
}

function pipeToApp(
  socket: Duplex,
  principal: string | null,
  pipes: Map<Duplex, string | null>,
  options: InboundOptions,
  enforcement: EnforcementContext,
  guard: ListenerGuard,
  rateLimiter: RateLimitGate | null,
): void {
  const decision = enforce(enforcement, { principal, port: options.app.port, protocol: 'tcp' });
  // A connection is the unit an opaque pipe can limit: it takes a token, or is closed unanswered.
  if (!decision.allow || (rateLimiter !== null && rateLimiter.admit(principal) !== null)) {
    socket.destroy();
    return;
  }
  const labels = { listener: options.name, direction: 'inbound' as const };
  options.metrics.tcpConnections.inc({
    ...labels,
    source_id: principal ?? 'plaintext',
    destination_id: options.identity.spiffeId,
  });
  options.metrics.tcpConnectionsOpen.inc(labels);
  const reads = new DirectReads();
  const app = connect({
    host: options.app.host,
    port: options.app.port,
    noDelay: true,
    allowHalfOpen: true,
    onread: reads.onread,
  });
  app.once('error', (err) =>
    options.logger.warn(
      { listener: options.name, source_id: principal, app: options.app, err: err.message },
      'Connection to the app failed',
    ),
  );
  pipes.set(socket, principal);
  closeWhenIdle(app, guard, { source_id: principal, destination_id: options.identity.spiffeId });
  // The pipe also resumes the socket the accept path paused to peek at it.
  pipeSockets(
    socket,
    app,
    () => {
      pipes.delete(socket);
      options.metrics.tcpConnectionsOpen.dec(labels);
    },
    { b: reads },
  );
}
