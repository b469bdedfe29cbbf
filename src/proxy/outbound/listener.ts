// The outbound listener: the local app talks plaintext to it, and it carries the traffic to an
// upstream service over mTLS (outbound/service.ts: endpoints, balancing, retries, timeouts,
// limits). `http` requests go through the service's request stack, stamped with the deadline the
// next hop reads (resilience/deadline.ts); `tcp` and `http2` are opaque pipes on a connection the
// service balanced and verified, except that an `http2` connection opened while the service has
// GRPCRoutes is relayed stream by stream (h2-streams.ts; the mode stays the connection's for its
// life). The app's connections are under the listener's limits (limits.ts) like any caller's.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock } from '../../spiffe/clock.js';
import type { DirectReads } from '../direct-reads.js';
import { proxyErrorResponse } from '../errors.js';
import { capConnections, closeWhenIdle, createListenerGuard, type ListenerGuard } from '../guard.js';
import { createGuardedHttpServer } from '../guarded-http.js';
import { filterHeaders } from '../headers.js';
import { ResponseRelay, refuseUpgrade, requestHead, respondWithError } from '../http-relay.js';
import type { ProxyIdentity } from '../identity.js';
import { DEFAULT_LIMITS, type ListenerLimits } from '../limits.js';
import type { ProxyLogger } from '../logger.js';
import { type ProxyMetrics, type RequestSeries, responseClassOf, seriesMemo } from '../metrics.js';
import { pipeSockets } from '../pipe.js';
import { requestRefusal } from '../request-refusal.js';
import { applyDeadline, DEADLINE_HEADER, setHeader } from '../resilience/deadline.js';
import { newRequestContext, type ProxyRequest } from '../resilience/exchange.js';
import type { RequestTracer } from '../tracing/request-tracer.js';
import { createGrpcStreamRelay, type GrpcRouting } from './h2-streams.js';
import { type OutboundRouter, type RoutedService, type RouteSend, writeRouteAnswer } from './router.js';
import type { UpstreamService } from './service.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** The service a listener sends to; reloads may point it at another, so it is read per request. */
export interface ServiceRef {
  service: UpstreamService;
}

export interface OutboundOptions {
  /** Names the listener in logs and metric labels. */
  readonly name: string;
  /** Where the local app connects, in plaintext. Port 0 picks a free port (see `address`). */
  readonly listen: HostPort;
  readonly protocol: 'http' | 'tcp' | 'http2';
  /** Where requests and connections go. */
  readonly upstream: ServiceRef;
  readonly identity: ProxyIdentity;
  readonly metrics: ProxyMetrics;
  readonly logger: ProxyLogger;
  /** Reads the time for deadlines. Defaults to the system clock. */
  readonly clock?: Clock;
  /** Cap and timeouts for the app's connections. Defaults to DEFAULT_LIMITS. */
  readonly limits?: ListenerLimits;
  /** Routes requests of `http` listeners whose service has routes (router.ts); absent: none do. */
  readonly router?: OutboundRouter;
  /**
   * `http2`: while the route table has GRPCRoutes for the service, NEW app connections are relayed
   * stream by stream (h2-streams.ts); the others, and every connection without routes, stay pipes.
   */
  readonly grpcRouting?: GrpcRouting;
  /** Spans and access log lines (tracing/); null or absent: off, at no cost per request. */
  readonly tracer?: RequestTracer | null;
}

export interface OutboundListener {
  readonly address: AddressInfo;
  /** Stops accepting, ends open connections and the upstream pool. */
  close(): Promise<void>;
}

export async function startOutbound(options: OutboundOptions): Promise<OutboundListener> {
  const { name, logger } = options;
  const clock = options.clock ?? systemClock;
  const guard = createListenerGuard({
    listener: name,
    limits: options.limits ?? DEFAULT_LIMITS,
    metrics: options.metrics,
    logger,
    clock,
  });
  const connect = () => options.upstream.service.connect();
  // Opaque pipes read the upstream directly (direct-reads.ts); upgrades keep its 'data' events.
  const connectForPipe = () => options.upstream.service.connect({ directReads: true });
  let server: Server;
  let closeProtocol: () => Promise<void>;
  const sockets = new Set<Socket>();
  if (options.protocol === 'http') {
    const http = createGuardedHttpServer(guard, { emittedConnections: false });
    const seriesOf = seriesMemo(options.metrics, name, 'outbound');
    http.on('request', (req: IncomingMessage, res: ServerResponse) =>
      handleRequest(req, res, options, guard, clock, seriesOf),
    );
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      handleUpgrade(req, socket, head, connect, guard),
    );
    server = http;
    closeProtocol = async () => {
      http.closeAllConnections();
    };
  } else {
    const routing = options.protocol === 'http2' ? options.grpcRouting : undefined;
    const relay = routing === undefined ? null : grpcRelay(options, routing, guard, clock);
    server = createNetServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (app) =>
      relay !== null && routing!.routes().grpc.has(options.upstream.service.name)
        ? relay.accept(app)
        : pipeToUpstream(app, connectForPipe, options, guard),
    );
    closeProtocol = relay === null ? async () => {} : () => relay.close();
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
    {
      listener: name,
      protocol: options.protocol,
      port: address.port,
      service: options.upstream.service.name,
    },
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

function grpcRelay(options: OutboundOptions, routing: GrpcRouting, guard: ListenerGuard, clock: Clock) {
  const { name, metrics, identity, upstream } = options;
  return createGrpcStreamRelay({
    listener: name,
    parent: () => upstream.service,
    routing,
    guard,
    clock,
    logger: options.logger,
    series: () => metrics.requestSeries(name, 'outbound', identity.spiffeId, upstream.service.name),
    onIdentityUpdate: (listener) => identity.onUpdate(listener),
  });
}

function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: OutboundOptions,
  guard: ListenerGuard,
  clock: Clock,
  seriesOf: (sourceId: string, destinationId: string) => RequestSeries,
): void {
  // Latency is elapsed time on the monotonic clock, not the injected one (which decides deadlines).
  const startedMs = performance.now();
  const parent = options.upstream.service;
  let service: RoutedService = parent;
  const series = seriesOf(options.identity.spiffeId, parent.name);
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
  const signals = filtered.signals;
  // With routes for the service, the rule decides where the request goes and its timeout.
  const routes = options.router?.routesOf(parent.name);
  let routed: RouteSend | null = null;
  if (routes !== undefined) {
    const decision = options.router!.decide(routes, req.method ?? 'GET', req.url ?? '/', filtered.headers);
    if (decision.kind === 'answer') {
      req.resume();
      writeRouteAnswer(res, decision);
      series.record(responseClassOf(decision.status), (performance.now() - startedMs) / 1_000);
      return;
    }
    routed = decision;
    service = decision.service;
  }
  const context = newRequestContext({
    inRetryScope: signals.attempt !== undefined,
    hasIdempotencyKey: signals.hasIdempotencyKey,
  });
  const timeoutMs = routed === null ? service.requestTimeoutMs : routed.requestTimeoutMs;
  applyDeadline(context, clock.nowMs(), timeoutMs, signals.deadline, signals.grpcTimeout);
  // The next hop reads it; its app forwards it on the calls it makes for this one.
  if (context.deadlineAtMs !== Number.POSITIVE_INFINITY) {
    const deadline = String(Math.floor(context.deadlineAtMs));
    setHeader(filtered.headers, DEADLINE_HEADER, deadline, signals.deadline !== undefined);
  }
  const method = req.method ?? 'GET';
  // The span's ID goes upstream in traceparent, so the headers are rewritten before they leave.
  const traced =
    options.tracer == null
      ? null
      : options.tracer.startOutbound(
          options.name,
          method,
          req.url ?? '/',
          filtered.headers,
          options.identity.spiffeId,
          service.name,
        );
  const request: ProxyRequest = {
    method,
    // The path goes as the app sent it: the upstream sidecar normalizes (or refuses) it, and decides.
    path: req.url ?? '/',
    headers: filtered.headers,
    body: filtered.hasBody ? req : null,
    context,
  };
  const relay = new ResponseRelay(res, (outcome) => {
    const seconds = (performance.now() - startedMs) / 1_000;
    series.record(outcome.responseClass, seconds);
    service.recordRequest(seconds);
    if (traced !== null) traced.end(res.statusCode, outcome.error, context);
  });
  if (routed === null) parent.send(request, relay);
  else options.router!.send(routed, request, relay);
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
  connect: () => Promise<{ socket: Duplex; serverId: string; reads?: DirectReads }>,
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
      pipeSockets(app, upstream.socket, () => options.metrics.tcpConnectionsOpen.dec(labels), {
        b: upstream.reads ?? null,
      });
    },
    () => app.destroy(),
  );
}
