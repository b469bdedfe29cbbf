// Per-stream HTTP/2 relay for inbound `http2` listeners, used only for connections whose policy
// needs each request's method or path (an opaque pipe can only be authorized by caller and port).
// It costs several times the opaque pipe per request (proxy-performance-notes.md), which is why
// the listener picks it per connection rather than always. Every stream is authorized on its
// normalized `:path` (the one forwarded), takes a token of the listener's rate limits (past them:
// 429 with retry-after, which gRPC clients read as UNAVAILABLE), gets the verified identity
// headers, and is relayed to the app over one shared h2c session, trailers included (gRPC puts
// its status there). Limits: streams per connection (SETTINGS), and the session and stream idle
// timeouts (h2-watch.ts).
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  createServer,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Duplex } from 'node:stream';
import { SIGIL_ERROR_HEADER } from '../errors.js';
import type { ListenerGuard } from '../guard.js';
import type { VerifiedPeer } from '../identity.js';
import type { ProxyLogger } from '../logger.js';
import type { RequestSeries } from '../metrics.js';
import { responseClassOf } from '../metrics.js';
import { normalizeRequestTarget, type PathNormalization } from '../policy/normalize.js';
import { type RateLimitGate, respondStreamRateLimited } from '../ratelimit/index.js';
import { type AdmittedTarget, requestRefusal } from '../request-refusal.js';
import type { RequestTracer, TracedRequest } from '../tracing/request-tracer.js';
import type { AuthorizationDecision, AuthorizationRequest } from './authorize.js';
import { SessionWatch } from './h2-watch.js';
import { IDENTITY_HEADERS, PEER_ID_HEADER, XFCC_HEADER, xfccValue } from './peer-headers.js';

export interface StreamRelayOptions {
  readonly listener: string;
  readonly app: { readonly host: string; readonly port: number };
  readonly logger: ProxyLogger;
  /** The listener's limits, clock (for the session idle checks), refusal counting and logging. */
  readonly guard: ListenerGuard;
  readonly pathNormalization: PathNormalization;
  /** Authorizes (counting and logging the decision) one request. */
  readonly enforce: (request: AuthorizationRequest) => AuthorizationDecision;
  /** The listener's rate limits (counting and logging refusals); null when it has none. */
  readonly rateLimiter: RateLimitGate | null;
  /** Our own SPIFFE ID now. */
  readonly ownId: () => string;
  readonly seriesFor: (principal: string | null) => RequestSeries;
  /** Spans and access log lines; null: off. */
  readonly tracer: RequestTracer | null;
}

export interface StreamRelay {
  /** Serves a verified connection (or a plaintext one, peer null) stream by stream. */
  accept(socket: Duplex, peer: VerifiedPeer | null): void;
  close(): Promise<void>;
}

export function createStreamRelay(options: StreamRelayOptions): StreamRelay {
  const { limits } = options.guard;
  const sessions = new WeakMap<object, SessionWatch>();
  const server = createServer({ settings: { maxConcurrentStreams: limits.maxConcurrentStreams } });
  // node:http2 makes the session synchronously inside emit('connection'); this carries the peer there.
  let accepting: VerifiedPeer | null = null;
  server.on('session', (session) =>
    sessions.set(session, new SessionWatch(session, accepting, options.guard)),
  );
  let app: ClientHttp2Session | undefined;
  const appSession = (): ClientHttp2Session => {
    if (app === undefined || app.closed || app.destroyed) {
      const session = h2connect(`http://${options.app.host}:${options.app.port}`);
      // Failures surface on the streams opened on it; the session is replaced on next use.
      session.on('error', (err) =>
        options.logger.debug({ listener: options.listener, err: err.message }, 'App HTTP/2 session failed'),
      );
      session.on('close', () => {
        if (app === session) app = undefined;
      });
      app = session;
    }
    return app;
  };
  server.on('stream', (stream, headers) => {
    // node:http2 emits `session` synchronously, before any stream of it.
    const watch = sessions.get(stream.session!)!;
    relayStream(stream, headers, watch.peer, watch.track(stream), appSession, options);
  });
  return {
    accept(socket, peer) {
      // The accept path made this TLSSocket by hand, past its handshake; node:http2 reads two
      // fields that only tls.Server would have set: it waits for `secureConnect` while
      // `secureConnecting` is true, and hands a socket without ALPN to HTTP/1.1. The listener's
      // protocol, not ALPN (the caller's sidecar negotiates none), says this connection is h2.
      const tlsFields = socket as { secureConnecting?: boolean; alpnProtocol?: unknown };
      if (tlsFields.alpnProtocol === false) {
        tlsFields.alpnProtocol = 'h2';
        tlsFields.secureConnecting = false;
      }
      accepting = peer;
      try {
        server.emit('connection', socket);
      } finally {
        accepting = null;
      }
    },
    async close() {
      app?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function relayStream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  peer: VerifiedPeer | null,
  /** Records DATA either way, for the stream idle timeout. */
  onActivity: () => void,
  appSession: () => ClientHttp2Session,
  options: StreamRelayOptions,
): void {
  // Latency is elapsed time on the monotonic clock, not the injected one (which decides expiry).
  const startedMs = performance.now();
  const principal = peer?.spiffeId ?? null;
  const series = options.seriesFor(principal);
  let traced: TracedRequest | null = null;
  const finish = (status: number | 'error') => {
    series.record(
      status === 'error' ? 'error' : responseClassOf(status),
      (performance.now() - startedMs) / 1_000,
    );
    if (traced !== null)
      traced.end(status === 'error' ? 0 : status, status === 'error' ? APP_ERROR : null, null);
  };
  // A caller that resets its stream is not a failure of ours; the close handlers below account for it.
  stream.on('error', () => {});
  // Also puts the stream in flowing mode; any body of a refused stream below is drained by it.
  stream.on('data', onActivity);

  const rawPath = headers[':path'];
  const normalized =
    rawPath === undefined ? undefined : normalizeRequestTarget(rawPath, options.pathNormalization);
  const refusal = requestRefusal(normalized, undefined);
  if (refusal !== null) {
    options.guard.refused(refusal.reason, {
      source_id: principal,
      destination_id: options.ownId(),
      method: headers[':method'],
      ...refusal.fields,
    });
    respondWithError(stream, refusal.status, refusal.reason, `sigil proxy: ${refusal.message}`);
    finish(refusal.status);
    return;
  }
  const target = normalized as AdmittedTarget | undefined;
  const decision = options.enforce({
    principal,
    port: options.app.port,
    protocol: 'http',
    method: headers[':method'],
    path: target?.path,
  });
  if (!decision.allow) {
    // gRPC clients read HTTP 403 as PERMISSION_DENIED.
    respondWithError(
      stream,
      constants.HTTP_STATUS_FORBIDDEN,
      'forbidden',
      'sigil proxy: forbidden by policy',
    );
    finish(constants.HTTP_STATUS_FORBIDDEN);
    return;
  }
  const limited = options.rateLimiter?.admit(principal) ?? null;
  if (limited !== null) {
    respondStreamRateLimited(stream, limited);
    finish(constants.HTTP_STATUS_TOO_MANY_REQUESTS);
    return;
  }

  let upstream: ClientHttp2Stream;
  try {
    const forwarded = forwardedHeaders(headers, principal, peer, options);
    // The app gets the path the policy decided on, not the one the caller sent.
    if (target !== undefined) forwarded[':path'] = target.target;
    if (options.tracer !== null)
      traced = options.tracer.startStream(options.listener, headers, forwarded, principal, options.ownId());
    upstream = appSession().request(forwarded);
  } catch (err) {
    respondWithError(
      stream,
      constants.HTTP_STATUS_BAD_GATEWAY,
      'app-unavailable',
      'sigil proxy: app unavailable',
    );
    finish('error');
    logFailure(err, principal, options);
    return;
  }
  let trailers: OutgoingHttpHeaders | undefined;
  let status: number | undefined;
  upstream.on('response', (responseHeaders, flags) => {
    status = Number(responseHeaders[':status']);
    // A response that ends in its headers (gRPC's trailers-only errors) has nothing to wait for.
    const endsHere = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    if (stream.destroyed) return;
    stream.respond(responseHeaders, endsHere ? { endStream: true } : { waitForTrailers: true });
  });
  upstream.on('data', onActivity);
  upstream.on('trailers', (received) => {
    trailers = received;
  });
  stream.on('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
  upstream.pipe(stream);
  stream.pipe(upstream);
  upstream.on('close', () => {
    if (status !== undefined && upstream.rstCode === constants.NGHTTP2_NO_ERROR) {
      finish(status);
      return;
    }
    // The app reset the stream or never answered.
    if (status === undefined && !stream.headersSent && !stream.destroyed) {
      respondWithError(
        stream,
        constants.HTTP_STATUS_BAD_GATEWAY,
        'app-error',
        'sigil proxy: app reset the stream',
      );
    } else if (!stream.closed) {
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
    finish('error');
  });
  upstream.on('error', (err) => logFailure(err, principal, options));
  stream.on('close', () => {
    // The caller cancelled: cancel the app's stream too, but only while it is live (resetting
    // finished streams made node:http2 drop whole sessions; see proxy-performance-notes.md).
    if (!upstream.closed && stream.rstCode !== constants.NGHTTP2_NO_ERROR) upstream.close(stream.rstCode);
  });
}

/** The caller's headers minus forged identity headers, plus the verified ones. */
function forwardedHeaders(
  headers: IncomingHttpHeaders,
  principal: string | null,
  peer: VerifiedPeer | null,
  options: StreamRelayOptions,
): OutgoingHttpHeaders {
  const forwarded: OutgoingHttpHeaders = {};
  const ownId = options.ownId();
  for (const [name, value] of Object.entries(headers)) {
    if (IDENTITY_HEADERS.has(name)) {
      options.logger.warn(
        { listener: options.listener, header: name, source_id: principal, destination_id: ownId },
        'Stripped identity header sent by the caller',
      );
      continue;
    }
    forwarded[name] = value;
  }
  if (peer !== null) {
    forwarded[XFCC_HEADER] = xfccValue(ownId, peer);
    forwarded[PEER_ID_HEADER] = peer.spiffeId;
  }
  return forwarded;
}

/** What a stream's span and log line name when the app reset it or never answered. */
const APP_ERROR = new Error('the app reset the stream or never answered');

function respondWithError(stream: ServerHttp2Stream, status: number, error: string, text: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({
    ':status': status,
    [SIGIL_ERROR_HEADER]: error,
    'content-type': 'text/plain; charset=utf-8',
  });
  stream.end(`${text}\n`);
}

function logFailure(err: unknown, principal: string | null, options: StreamRelayOptions): void {
  options.logger.warn(
    {
      listener: options.listener,
      source_id: principal,
      destination_id: options.ownId(),
      err: err instanceof Error ? err.message : String(err),
    },
    'Request to the app failed',
  );
}
