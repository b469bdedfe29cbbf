// The outbound listener: the local app talks plaintext to it, and it carries the traffic to one
// upstream sidecar over mTLS, refusing any server whose SPIFFE ID is not in `serverIds`. `http` is
// relayed per request through an undici Pool whose connector is UpstreamConnector; `tcp` and `http2`
// are opaque pipes opened only after the server is verified. The app's connections are under the
// listener's limits (limits.ts) like any caller's. Routing, retries and balancing are layers
// around this, not part of it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock } from '../../spiffe/clock.js';
import type { SigilError } from '../../spiffe/errors.js';
import { proxyErrorResponse } from '../errors.js';
import { capConnections, closeWhenIdle, createListenerGuard, type ListenerGuard } from '../guard.js';
import { createGuardedHttpServer } from '../guarded-http.js';
import { filterHeaders } from '../headers.js';
import { Pool, refuseUpgrade, relayRequest, requestHead, respondWithError } from '../http-relay.js';
import type { ProxyIdentity } from '../identity.js';
import { DEFAULT_LIMITS, type ListenerLimits } from '../limits.js';
import type { ProxyLogger } from '../logger.js';
import type { ProxyMetrics } from '../metrics.js';
import { pipeSockets } from '../pipe.js';
import { requestRefusal } from '../request-refusal.js';
import { UpstreamConnector } from './connect.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface OutboundOptions {
  /** Names the listener in logs and metric labels. */
  readonly name: string;
  /** Where the local app connects, in plaintext. Port 0 picks a free port (see `address`). */
  readonly listen: HostPort;
  readonly protocol: 'http' | 'tcp' | 'http2';
  /** The upstream sidecar's inbound listener. */
  readonly upstream: HostPort;
  /** SPIFFE IDs the upstream sidecar may present; anything else fails the request or connection. */
  readonly serverIds: readonly string[];
  readonly identity: ProxyIdentity;
  readonly metrics: ProxyMetrics;
  readonly logger: ProxyLogger;
  /** Arms connect timeouts and checks cached session expiry. Defaults to the system clock. */
  readonly clock?: Clock;
  /** TCP connect plus mTLS handshake plus verification, in milliseconds. Defaults to 10s. */
  readonly connectTimeoutMs?: number;
  /** Cap and timeouts for the app's connections. Defaults to DEFAULT_LIMITS. */
  readonly limits?: ListenerLimits;
}

export interface OutboundListener {
  readonly address: AddressInfo;
  /** Stops accepting, ends open connections and the upstream pool. */
  close(): Promise<void>;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Sidecar-to-sidecar keep-alive: handshakes are the expensive part, so idle connections live longer than undici's 4s. */
const UPSTREAM_KEEP_ALIVE_MS = 30_000;

export async function startOutbound(options: OutboundOptions): Promise<OutboundListener> {
  const { name, identity, logger } = options;
  const clock = options.clock ?? systemClock;
  const guard = createListenerGuard({
    listener: name,
    limits: options.limits ?? DEFAULT_LIMITS,
    metrics: options.metrics,
    logger,
    clock,
  });
  const connector = new UpstreamConnector({
    host: options.upstream.host,
    port: options.upstream.port,
    serverIds: options.serverIds,
    identity,
    clock,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    onFailure: (err, presentedId) => recordConnectFailure(err, presentedId, options),
  });
  const connectLogged = (): Promise<{ socket: Duplex; serverId: string }> => connector.connect();

  let server: Server;
  let closeProtocol: () => Promise<void>;
  const sockets = new Set<Socket>();
  if (options.protocol === 'http') {
    const makePool = () =>
      new Pool(`http://${options.upstream.host}:${options.upstream.port}`, {
        pipelining: 1,
        keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS,
        connect: (_opts, callback) => {
          connectLogged().then(
            ({ socket }) => callback(null, socket as never),
            (err: Error) => callback(err, null),
          );
        },
      });
    let pool = makePool();
    // New connections already use the current context (the connector reads it per connect); a
    // fresh pool also retires keep-alive connections made under the old SVID once their in-flight
    // requests finish, instead of keeping them for as long as traffic flows.
    const stopFollowing = identity.onUpdate(() => {
      const old = pool;
      pool = makePool();
      old
        .close()
        .catch((err: unknown) =>
          logger.debug({ listener: name, err: String(err) }, 'Closing the pre-rotation pool failed'),
        );
    });
    const http = createGuardedHttpServer(guard, { emittedConnections: false });
    // The pool does not say which connection served a request; the accepted ID list does.
    const destinationLabel = options.serverIds.join(',');
    http.on('request', (req: IncomingMessage, res: ServerResponse) =>
      handleRequest(req, res, pool, destinationLabel, options, guard),
    );
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      handleUpgrade(req, socket, head, connectLogged, guard),
    );
    server = http;
    closeProtocol = async () => {
      stopFollowing();
      http.closeAllConnections();
      await pool.destroy();
    };
  } else {
    server = createNetServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (app) =>
      pipeToUpstream(app, connectLogged, options, guard),
    );
    closeProtocol = async () => {};
  }
  capConnections(server, guard);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  logger.info(
    { listener: name, protocol: options.protocol, port: address.port, upstream: options.upstream },
    'Outbound listener started',
  );
  return {
    address,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closeProtocol();
      await closed;
    },
  };
}

function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  pool: Pool,
  destinationLabel: string,
  options: OutboundOptions,
  guard: ListenerGuard,
): void {
  // Latency is elapsed time on the monotonic clock, not the injected one (which decides expiry).
  const startedMs = performance.now();
  const series = options.metrics.requestSeries(
    options.name,
    'outbound',
    options.identity.spiffeId,
    destinationLabel,
  );
  const filtered = filterHeaders(req.rawHeaders);
  // undici would refuse two Host fields as a 502, blaming the upstream for the app's malformed request.
  const refusal = requestRefusal(undefined, filtered);
  if (refusal !== null) {
    guard.refused(refusal.reason, {
      source_id: options.identity.spiffeId,
      method: req.method,
      ...refusal.fields,
    });
    req.resume();
    respondWithError(res, refusal.status, refusal.reason, `sigil proxy: ${refusal.message}`);
    series.record('4xx', (performance.now() - startedMs) / 1_000);
    return;
  }
  // The path goes as the app sent it: the upstream sidecar normalizes (or refuses) it, and decides.
  relayRequest(pool, req, res, req.url ?? '/', filtered, (outcome) =>
    series.record(outcome.responseClass, (performance.now() - startedMs) / 1_000),
  );
}

function handleUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  connect: () => Promise<{ socket: Duplex; serverId: string }>,
  guard: ListenerGuard,
): void {
  const headers = filterHeaders(req.rawHeaders, { keepUpgrade: true }).headers;
  connect().then(
    (upstream) => {
      upstream.socket.write(requestHead(req.method, req.url ?? '/', headers));
      if (head.length > 0) upstream.socket.write(head);
      // node:http types the upgraded socket as a Duplex; it is the app's net.Socket.
      closeWhenIdle(socket as Socket, guard, { destination_id: upstream.serverId });
      pipeSockets(socket, upstream.socket, () => {});
    },
    (err: unknown) => {
      const mapped = proxyErrorResponse(err);
      refuseUpgrade(socket, mapped.status, mapped.error, `sigil proxy: ${mapped.error}`);
    },
  );
}

function pipeToUpstream(
  app: Socket,
  connect: () => Promise<{ socket: Duplex; serverId: string }>,
  options: OutboundOptions,
  guard: ListenerGuard,
): void {
  // pauseOnConnect: the app's bytes wait in the kernel until the server is verified.
  const labels = { listener: options.name, direction: 'outbound' as const };
  // Until the pipe owns it, an app that resets is simply dropped; the pending connect still settles.
  const onEarlyError = () => app.destroy();
  app.on('error', onEarlyError);
  connect().then(
    (upstream) => {
      if (app.destroyed) {
        upstream.socket.destroy();
        return;
      }
      app.off('error', onEarlyError);
      options.metrics.tcpConnections.inc({
        ...labels,
        source_id: options.identity.spiffeId,
        destination_id: upstream.serverId,
      });
      options.metrics.tcpConnectionsOpen.inc(labels);
      closeWhenIdle(app, guard, { destination_id: upstream.serverId });
      pipeSockets(app, upstream.socket, () => options.metrics.tcpConnectionsOpen.dec(labels));
    },
    () => app.destroy(),
  );
}

/** Counts and logs a failed upstream connect, with both IDs when the server's was the problem. */
function recordConnectFailure(err: SigilError, presentedId: string | null, options: OutboundOptions): void {
  const reason = err.reason ?? err.code;
  const isIdentityFailure = err.code !== 'ERR_UNAVAILABLE';
  if (isIdentityFailure) {
    options.metrics.handshakeFailures.inc({ listener: options.name, direction: 'outbound', reason });
  }
  options.logger.warn(
    {
      listener: options.name,
      source_id: options.identity.spiffeId,
      destination_id: presentedId,
      upstream: options.upstream,
      expected_ids: options.serverIds,
      reason,
      err: err.message,
    },
    isIdentityFailure ? 'Upstream identity refused' : 'Upstream connect failed',
  );
}
