// The inbound listener: terminates mTLS in front of the local app, authorizes, and forwards. `http`
// is relayed per request through one keep-alive undici Pool to the app (identity headers set from
// the verified peer); `tcp` and `http2` are opaque pipes authorized once per connection, since
// relaying HTTP/2 per stream costs ~6x the CPU of carrying the app's h2c inside the pipe
// (proxy-performance-notes.md). An `http2` connection is relayed stream by stream (h2-relay.ts)
// only when the policy for the port looks at methods or paths. It does not retry, balance or time
// out requests: those are layers.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock } from '../../spiffe/clock.js';
import { type FilteredHeaders, type FilterOptions, filterHeaders } from '../headers.js';
import { Pool, refuseUpgrade, relayRequest, requestHead, respondWithError } from '../http-relay.js';
import type { ProxyIdentity, VerifiedPeer } from '../identity.js';
import type { ProxyLogger } from '../logger.js';
import type { ProxyMetrics } from '../metrics.js';
import { pipeSockets } from '../pipe.js';
import { createAcceptServer } from './accept.js';
import { type Authorizer, type EnforcementContext, enforce } from './authorize.js';
import { createStreamRelay } from './h2-relay.js';
import { appendPeerHeaders, IDENTITY_HEADERS, type VerifiedCaller } from './peer-headers.js';

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
  /** Arms handshake timeouts. Defaults to the system clock. */
  readonly clock?: Clock;
  /** Handshake plus peer verification must finish within this, in milliseconds. Defaults to 10s. */
  readonly handshakeTimeoutMs?: number;
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

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Keep-alive to the app: idle app connections are dropped after this (undici's default is 4s). */
const APP_KEEP_ALIVE_MS = 30_000;
/**
 * Idle callers' connections are kept longer than the outbound pool keeps them (30s), so the caller's
 * side, which paid for the mTLS handshake, decides when to close; node:http's 5s default made
 * pools re-handshake after every short lull.
 */
const CALLER_KEEP_ALIVE_MS = 60_000;

export async function startInbound(options: InboundOptions): Promise<InboundListener> {
  const { name, identity, metrics, logger } = options;
  const enforcement: EnforcementContext = {
    listener: name,
    authorizer: options.authorizer,
    metrics,
    logger,
    ownId: () => identity.spiffeId,
  };
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
    const http = createHttpServer({ keepAlive: true, keepAliveTimeout: CALLER_KEEP_ALIVE_MS });
    http.on('request', (req: IncomingMessage, res: ServerResponse) =>
      handleRequest(req, res, peers.get(req.socket) ?? null, pool, options, enforcement),
    );
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      handleUpgrade(req, socket, head, peers.get(req.socket) ?? null, options, enforcement),
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
      http.closeAllConnections();
      await pool.destroy();
    };
  } else if (options.protocol === 'http2') {
    const relay = createStreamRelay({
      listener: name,
      app: options.app,
      logger,
      enforce: (request) => enforce(enforcement, request),
      ownId: () => identity.spiffeId,
      seriesFor: (principal) =>
        metrics.requestSeries(name, 'inbound', principal ?? 'plaintext', identity.spiffeId),
    });
    // Decided per connection, under the policy in force when it opens.
    const perStream = () => options.authorizer.needsRequestDetails(options.app.port);
    onSecure = (socket, peer) =>
      perStream()
        ? relay.accept(socket, peer)
        : pipeToApp(socket, peer.spiffeId, pipes, options, enforcement);
    onPlaintext = (socket) => {
      if (!perStream()) return pipeToApp(socket, null, pipes, options, enforcement);
      relay.accept(socket, null);
      socket.resume();
    };
    closeProtocol = () => relay.close();
  } else {
    onSecure = (socket, peer) => pipeToApp(socket, peer.spiffeId, pipes, options, enforcement);
    onPlaintext = (socket) => pipeToApp(socket, null, pipes, options, enforcement);
    closeProtocol = async () => {};
  }

  const { server, sockets } = createAcceptServer({
    listener: name,
    mode: options.mode,
    identity,
    metrics,
    logger,
    clock: options.clock ?? systemClock,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    onSecure,
    onPlaintext,
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

function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  peer: VerifiedPeer | null,
  pool: Pool,
  options: InboundOptions,
  enforcement: EnforcementContext,
): void {
  // Latency is elapsed time on the monotonic clock, not the injected one (which decides expiry).
  const startedMs = performance.now();
  const principal = peer?.spiffeId ?? null;
  const ownId = options.identity.spiffeId;
  const series = options.metrics.requestSeries(options.name, 'inbound', principal ?? 'plaintext', ownId);
  const decision = enforce(enforcement, {
    principal,
    port: options.app.port,
    protocol: 'http',
    method: req.method,
    path: req.url,
  });
  if (!decision.allow) {
    // Drain whatever body was sent so the connection stays usable for the next request.
    req.resume();
    respondWithError(res, 403, 'forbidden', 'sigil proxy: forbidden by policy');
    series.record('4xx', (performance.now() - startedMs) / 1_000);
    return;
  }
  const headers = headersForApp(req, peer, ownId, options, STRIP_IDENTITY);
  relayRequest(pool, req, res, headers, (outcome) => {
    series.record(outcome.responseClass, (performance.now() - startedMs) / 1_000);
    if (outcome.error !== null) {
      options.logger.warn(
        {
          listener: options.name,
          source_id: principal,
          destination_id: ownId,
          err: outcome.error instanceof Error ? outcome.error.message : String(outcome.error),
        },
        'Request to the app failed',
      );
    }
  });
}

function handleUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  peer: VerifiedPeer | null,
  options: InboundOptions,
  enforcement: EnforcementContext,
): void {
  const principal = peer?.spiffeId ?? null;
  const decision = enforce(enforcement, {
    principal,
    port: options.app.port,
    protocol: 'http',
    method: req.method,
    path: req.url,
  });
  if (!decision.allow) {
    refuseUpgrade(socket, 403, 'forbidden', 'sigil proxy: forbidden by policy');
    return;
  }
  const { headers } = headersForApp(
    req,
    peer,
    options.identity.spiffeId,
    options,
    STRIP_IDENTITY_KEEP_UPGRADE,
  );
  const app = connect({ host: options.app.host, port: options.app.port, noDelay: true });
  app.write(requestHead(req, headers));
  if (head.length > 0) app.write(head);
  pipeSockets(socket, app, () => {});
}

function pipeToApp(
  socket: Duplex,
  principal: string | null,
  pipes: Map<Duplex, string | null>,
  options: InboundOptions,
  enforcement: EnforcementContext,
): void {
  const decision = enforce(enforcement, { principal, port: options.app.port, protocol: 'tcp' });
  if (!decision.allow) {
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
  const app = connect({ host: options.app.host, port: options.app.port, noDelay: true, allowHalfOpen: true });
  app.once('error', (err) =>
    options.logger.warn(
      { listener: options.name, source_id: principal, app: options.app, err: err.message },
      'Connection to the app failed',
    ),
  );
  pipes.set(socket, principal);
  // pipe() also resumes the socket the accept path paused to peek at it.
  pipeSockets(socket, app, () => {
    pipes.delete(socket);
    options.metrics.tcpConnectionsOpen.dec(labels);
  });
}

const STRIP_IDENTITY: FilterOptions = { strip: IDENTITY_HEADERS };
const STRIP_IDENTITY_KEEP_UPGRADE: FilterOptions = { strip: IDENTITY_HEADERS, keepUpgrade: true };

/**
 * The request's headers as the app gets them: hop-by-hop and caller-sent identity headers removed
 * (each of the latter logged: a caller claiming an identity is worth a look), then the verified
 * identity headers added.
 */
function headersForApp(
  req: IncomingMessage,
  peer: VerifiedPeer | null,
  ownId: string,
  options: InboundOptions,
  filter: FilterOptions,
): FilteredHeaders {
  const filtered = filterHeaders(req.rawHeaders, filter);
  for (const header of filtered.stripped) {
    options.logger.warn(
      { listener: options.name, header, source_id: peer?.spiffeId ?? null, destination_id: ownId },
      'Stripped identity header sent by the caller',
    );
  }
  appendPeerHeaders(filtered.headers, ownId, callerOf(peer));
  return filtered;
}

function callerOf(peer: VerifiedPeer | null): VerifiedCaller | null {
  return peer === null ? null : { spiffeId: peer.spiffeId, leafSha256Hex: peer.leafSha256Hex };
}
