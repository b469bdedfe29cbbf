// The outbound per-stream HTTP/2 relay, for `http2` listeners whose service has GRPCRoutes. An
// app connection is served by node:http2; each stream is routed on its gRPC service and method
// (grpc-routing.ts), gets the rule's RequestHeaderModifier and the `x-sigil-deadline` of its
// `grpc-timeout` (resilience/deadline.ts), and is relayed to the backend service the rule's
// weights pick, over that service's HTTP/2 sessions (h2-sessions.ts: verified mTLS connections).
// Headers, DATA and trailers go both ways with backpressure (pipe), the response headers get the
// rule's ResponseHeaderModifier, and a reset of a live stream on either side resets the other.
// Costs several times the opaque pipe per request (proxy-performance-notes.md), so the listener
// uses it only while its service has GRPCRoutes; the choice is made per app connection.
// Limits: the listener's maxConcurrentStreams (SETTINGS), and its session and stream idle
// timeouts (inbound/h2-watch.ts). The deadline is stamped for the next hop, not enforced here:
// the gRPC client enforces its own grpc-timeout.
import {
  type ClientHttp2Stream,
  constants,
  createServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { addAbortSignal } from 'node:stream';
import type { Clock } from '../../spiffe/clock.js';
import { SIGIL_ERROR_HEADER } from '../errors.js';
import type { ListenerGuard } from '../guard.js';
import { SessionWatch } from '../inbound/h2-watch.js';
import type { ProxyLogger } from '../logger.js';
import { type RequestSeries, responseClassOf } from '../metrics.js';
import { applyDeadline, DEADLINE_HEADER } from '../resilience/deadline.js';
import type { GrpcRule, RouteTable } from '../routes/model.js';
import { pickBackend } from '../routes/select.js';
import { modifyHeaderObject, selectGrpcEntry } from './grpc-routing.js';
import { type SessionTarget, UpstreamSessions } from './h2-sessions.js';

/** What the relay needs of a backend service. */
export interface GrpcBackend extends SessionTarget {
  /** The service's whole-request timeout, 0 for none: bounds the deadline stamped on the stream. */
  readonly requestTimeoutMs: number;
  /** Counts one finished request and its whole duration. */
  recordRequest(seconds: number): void;
}

/** How an outbound listener finds its routes and the services they name. */
export interface GrpcRouting {
  /** The route table now in force (reloads replace it). */
  routes(): RouteTable;
  /** The configured service named `name`, undefined when there is none. */
  service(name: string): GrpcBackend | undefined;
  /** In [0, 1): picks backends by weight. */
  readonly random: () => number;
}

export interface GrpcStreamRelayOptions {
  readonly listener: string;
  /** The listener's service: the GRPCRoutes attached to it route its streams. */
  readonly parent: () => GrpcBackend;
  readonly routing: GrpcRouting;
  /** The listener's limits, clock (idle checks), refusal and timeout counting. */
  readonly guard: ListenerGuard;
  readonly clock: Clock;
  readonly logger: ProxyLogger;
  /** The request series of the listener's service. */
  readonly series: () => RequestSeries;
  /** Subscribes to our SVID's rotation (ProxyIdentity.onUpdate); returns the unsubscribe. */
  readonly onIdentityUpdate: (listener: () => void) => () => void;
}

export interface GrpcStreamRelay {
  /** Serves an app connection (paused, as the listener accepted it) stream by stream. */
  accept(socket: Socket): void;
  close(): Promise<void>;
}

/** gRPC status codes the relay answers with itself. */
const GRPC_UNIMPLEMENTED = '12';
const GRPC_UNAVAILABLE = '14';

export function createGrpcStreamRelay(options: GrpcStreamRelayOptions): GrpcStreamRelay {
  const { guard } = options;
  const watches = new WeakMap<object, SessionWatch>();
  const server = createServer({ settings: { maxConcurrentStreams: guard.limits.maxConcurrentStreams } });
  server.on('session', (session) => watches.set(session, new SessionWatch(session, null, guard)));
  const pools = new Map<GrpcBackend, UpstreamSessions>();
  const poolFor = (backend: GrpcBackend): UpstreamSessions => {
    let pool = pools.get(backend);
    if (pool === undefined) {
      const created = new UpstreamSessions(
        backend,
        options.clock,
        (service, err) =>
          options.logger.debug(
            { listener: options.listener, service, err: err.message },
            'Upstream HTTP/2 session failed',
          ),
        // A service a reload removed (or one idle) does not stay referenced here.
        () => {
          if (pools.get(backend) === created) pools.delete(backend);
        },
      );
      pools.set(backend, created);
      pool = created;
    }
    return pool;
  };
  const stopFollowingIdentity = options.onIdentityUpdate(() => {
    for (const pool of pools.values()) pool.retire();
  });
  // node:http2 passes the raw header list too (not in @types/node 20); routes/select.ts reads that.
  const onStream = (
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    _flags: number,
    raw: string[],
  ) => {
    // node:http2 emits `session` synchronously, before any stream of it.
    const onActivity = watches.get(stream.session!)!.track(stream);
    relayStream(stream, headers, raw, onActivity, poolFor, options);
  };
  server.on('stream', onStream as (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void);
  return {
    accept(socket) {
      server.emit('connection', socket);
      // pauseOnConnect held the app's bytes; node:http2 reads from the socket itself from here.
      socket.resume();
    },
    async close() {
      stopFollowingIdentity();
      for (const pool of pools.values()) pool.close();
      pools.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function relayStream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  /** The same as a flat list, as routes/select.ts reads headers. */
  rawHeaders: readonly string[],
  onActivity: () => void,
  poolFor: (backend: GrpcBackend) => UpstreamSessions,
  options: GrpcStreamRelayOptions,
): void {
  // Latency is elapsed time on the monotonic clock, not the injected one (which decides deadlines).
  const startedMs = performance.now();
  const series = options.series();
  // An app that resets its stream is not a failure of ours; the close handlers account for it.
  stream.on('error', () => {});
  // No 'data' listener until the pipe is set up: the body waits (paused) while a session connects.

  const parent = options.parent();
  const entries = options.routing.routes().grpc.get(parent.name);
  let rule: GrpcRule | null = null;
  let backend: GrpcBackend | undefined = parent;
  // Routes gone since this connection chose the relay: the parent takes everything, as without routes.
  if (entries !== undefined) {
    rule = selectGrpcEntry(entries, headers[':path'], rawHeaders)?.rule ?? null;
    if (rule === null) {
      answerGrpc(stream, 404, GRPC_UNIMPLEMENTED, 'no-route', 'sigil proxy: no GRPCRoute rule matches');
      series.record('4xx', (performance.now() - startedMs) / 1_000);
      return;
    }
    const picked = pickBackend(rule.backends, options.routing.random);
    backend = picked === null ? undefined : options.routing.service(picked);
  }
  if (backend === undefined) {
    answerGrpc(stream, 200, GRPC_UNAVAILABLE, 'no-backend', 'sigil proxy: the route has no usable backend');
    series.record('5xx', (performance.now() - startedMs) / 1_000);
    return;
  }

  const forwarded: OutgoingHttpHeaders = { ...headers };
  if (rule?.requestHeaders) modifyHeaderObject(forwarded, rule.requestHeaders);
  const deadline = { deadlineAtMs: 0, deadlineFromCaller: false };
  applyDeadline(
    deadline,
    options.clock.nowMs(),
    backend.requestTimeoutMs,
    single(headers[DEADLINE_HEADER]),
    single(headers['grpc-timeout']),
  );
  if (deadline.deadlineAtMs !== Number.POSITIVE_INFINITY)
    forwarded[DEADLINE_HEADER] = String(Math.floor(deadline.deadlineAtMs));

  const target = backend;
  const pool = poolFor(target);
  const finish = (responseClass: Parameters<RequestSeries['record']>[0]) => {
    const seconds = (performance.now() - startedMs) / 1_000;
    series.record(responseClass, seconds);
    target.recordRequest(seconds);
  };
  pool.acquire((session, err) => {
    if (stream.closed || stream.destroyed) return;
    let upstream: ClientHttp2Stream;
    try {
      if (session === null) throw err;
      upstream = session.request(forwarded);
    } catch (failure) {
      answerGrpc(stream, 200, GRPC_UNAVAILABLE, 'upstream-unavailable', 'sigil proxy: upstream unavailable');
      finish('error');
      logFailure(failure, target.name, options);
      return;
    }
    pool.opened(session);
    pipeStream(stream, upstream, rule, onActivity, finish);
    upstream.once('close', () => pool.closed(session));
    upstream.on('error', (failure) => {
      // Our own reset of it (the app cancelled) is no failure.
      if (stream.rstCode !== constants.NGHTTP2_CANCEL) logFailure(failure, target.name, options);
    });
  });
}

/** Relays one stream both ways once its upstream stream exists. */
function pipeStream(
  stream: ServerHttp2Stream,
  upstream: ClientHttp2Stream,
  rule: GrpcRule | null,
  onActivity: () => void,
  finish: (responseClass: Parameters<RequestSeries['record']>[0]) => void,
): void {
  let trailers: OutgoingHttpHeaders | undefined;
  let status: number | undefined;
  upstream.on('response', (responseHeaders, flags) => {
    status = Number(responseHeaders[':status']);
    if (rule?.responseHeaders) modifyHeaderObject(responseHeaders, rule.responseHeaders);
    // A response that ends in its headers (gRPC's trailers-only errors) has nothing to wait for.
    const endsHere = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    if (stream.destroyed) return;
    stream.respond(responseHeaders, endsHere ? { endStream: true } : { waitForTrailers: true });
  });
  stream.on('data', onActivity);
  upstream.on('data', onActivity);
  upstream.on('trailers', (received) => {
    trailers = received;
  });
  stream.on('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
  // node:http2 ends a reset stream's readable side like a finished one: a pipe would turn the
  // reset into a clean end (a gRPC call without status). Each side is ended only if not reset.
  upstream.pipe(stream, { end: false });
  stream.pipe(upstream, { end: false });
  upstream.once('end', () => {
    if (!isReset(upstream) && !stream.writableEnded && !stream.destroyed) stream.end();
  });
  stream.once('end', () => {
    if (!isReset(stream) && !upstream.writableEnded && !upstream.destroyed) upstream.end();
  });
  upstream.on('close', () => {
    if (status !== undefined && upstream.rstCode === constants.NGHTTP2_NO_ERROR) {
      finish(responseClassOf(status));
      return;
    }
    finish('error');
    if (stream.closed || stream.destroyed) return;
    const code = upstream.rstCode ?? constants.NGHTTP2_INTERNAL_ERROR;
    // A cancel reaches the app as a cancel. Anything else before a response (a refused stream, a
    // session gone) is the backend's unavailability; after one, the app's stream is reset too.
    if (status === undefined && code !== constants.NGHTTP2_CANCEL)
      answerGrpc(stream, 200, GRPC_UNAVAILABLE, 'upstream-reset', 'sigil proxy: upstream reset the stream');
    else reset(stream, code);
  });
  stream.on('close', () => {
    // The app cancelled: cancel the backend's stream too, but only while it is live (resetting
    // finished streams made node:http2 drop whole sessions; see proxy-performance-notes.md).
    if (!upstream.closed && stream.rstCode !== constants.NGHTTP2_NO_ERROR) reset(upstream, stream.rstCode!);
  });
}

/** A trailers-only gRPC answer of our own (gRPC clients read HTTP 404 as UNIMPLEMENTED too). */
function answerGrpc(
  stream: ServerHttp2Stream,
  httpStatus: number,
  grpcStatus: string,
  error: string,
  message: string,
): void {
  if (stream.destroyed || stream.headersSent) return;
  // The request body, if any, is read and dropped.
  stream.resume();
  stream.respond(
    {
      ':status': httpStatus,
      'content-type': 'application/grpc',
      'grpc-status': grpcStatus,
      'grpc-message': encodeURIComponent(message),
      [SIGIL_ERROR_HEADER]: error,
    },
    { endStream: true },
  );
}

/** Already aborted: handing it to addAbortSignal destroys a stream with node's own AbortError. */
const ABORTED = AbortSignal.abort();

/**
 * Resets a live stream: RST_STREAM CANCEL for a cancel, INTERNAL_ERROR for anything else. Not
 * `close(code)`: it ends the writable side first, and on a stream whose peer has half-closed (every
 * unary call) with nothing holding the end back (no waitForTrailers), END_STREAM goes out before
 * the RST_STREAM and the peer sees a clean end without a gRPC status. A destroy skips the end, and
 * node's own AbortError (which addAbortSignal uses) makes that destroy a CANCEL.
 */
function reset(stream: ServerHttp2Stream | ClientHttp2Stream, code: number): void {
  if (code === constants.NGHTTP2_CANCEL) addAbortSignal(ABORTED, stream);
  else stream.destroy(new Error(`HTTP/2 stream reset with code ${code} on the other side`));
}

function isReset(stream: ServerHttp2Stream | ClientHttp2Stream): boolean {
  return stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function logFailure(err: unknown, service: string, options: GrpcStreamRelayOptions): void {
  options.logger.warn(
    { listener: options.listener, service, err: err instanceof Error ? err.message : String(err) },
    'gRPC stream to the upstream service failed',
  );
}
