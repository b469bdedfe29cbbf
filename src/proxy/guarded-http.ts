// The node:http server every HTTP/1.1 listener (inbound, outbound, admin) runs on, with the
// listener's header, request and keep-alive timeouts, and malformed requests answered rather than
// dropped. node:http enforces headersTimeout and requestTimeout itself, from one sweep timer per
// server over its connection list (no timer per request), but it only builds that list when the
// server emits `listening`: sockets handed over with emit('connection'), as the inbound listener
// does after the TLS handshake, were never tracked, so a caller could hold a connection forever by
// sending nothing (slowloris). Emitting `listening` on such a server starts Node's own tracking.
import { createServer, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { REFUSAL_STATUS, SIGIL_ERROR_HEADER } from './errors.js';
import type { ListenerGuard } from './guard.js';
import type { ListenerLimits } from './limits.js';

/** node:http's own sweep interval, kept as the upper bound. */
const NODE_CHECK_INTERVAL_MS = 30_000;
/** Sweeping more often than this costs more than it saves, even for very short test timeouts. */
const MIN_CHECK_INTERVAL_MS = 250;
/**
 * After answering a bad request the socket is ended; a client that never closes its side would
 * keep it half-open, so it is destroyed after this. Long enough for the answer to leave.
 */
const CLIENT_ERROR_LINGER_MS = 2_000;

export interface GuardedHttpOptions {
  /** True when sockets arrive by emit('connection') rather than this server's own listen(). */
  readonly emittedConnections: boolean;
}

export function createGuardedHttpServer(guard: ListenerGuard, options: GuardedHttpOptions): Server {
  const { limits } = guard;
  const server = createServer({
    keepAlive: true,
    keepAliveTimeout: limits.idleTimeoutMs,
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: checkingIntervalMs(limits),
  });
  if (options.emittedConnections) server.emit('listening');
  // The parser reports again for every chunk that arrives after the first error; the first answer
  // stands, and destroying the socket then would discard it unsent.
  const answered = new WeakSet<Duplex>();
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (answered.has(socket)) return;
    answered.add(socket);
    answerClientError(err, socket, guard);
  });
  return server;
}

/**
 * How often node:http sweeps for expired heads and bodies: half the header timeout, so a slow
 * head is cut between 1x and 1.5x header_timeout.
 */
export function checkingIntervalMs(limits: ListenerLimits): number {
  return Math.min(
    NODE_CHECK_INTERVAL_MS,
    Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(limits.headerTimeoutMs / 2)),
  );
}

interface ServerSocketState {
  /** node:http's parser; `incoming` is the request being read, if its head is complete. */
  parser?: { incoming?: { complete: boolean } | null } | null;
  /** The response in flight on this socket, if any. */
  _httpMessage?: { headersSent: boolean } | null;
}

/**
 * node:http calls this for a request it cannot parse and for the timeouts it enforces. Its default
 * answer is written and the socket destroyed at once, which on a TLS socket discards the answer
 * before it is encrypted and sent: a 100 KB header over mTLS got a silent close instead of 431.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, guard: ListenerGuard): void {
  const code = err.code ?? '';
  const isTimeout = code === 'ERR_HTTP_REQUEST_TIMEOUT';
  if (!isTimeout && !code.startsWith('HPE_')) {
    // A reset or a TLS failure: the peer is gone or unreadable; nobody to answer.
    socket.destroy();
    return;
  }
  const state = socket as Duplex & ServerSocketState;
  let reason: keyof typeof REFUSAL_STATUS;
  if (isTimeout) {
    const incoming = state.parser?.incoming;
    const kind = incoming && !incoming.complete ? 'request' : 'header';
    reason = `${kind}-timeout`;
    guard.timedOut(kind, { remote: remoteOf(socket) });
  } else {
    reason = code === 'HPE_HEADER_OVERFLOW' ? 'header-too-large' : 'bad-request';
    guard.refused(reason, { remote: remoteOf(socket), err: err.message, code });
  }
  if (!socket.writable || state._httpMessage?.headersSent) {
    // A response is already under way: a second status line would corrupt it.
    socket.destroy();
    return;
  }
  const status = REFUSAL_STATUS[reason];
  const body = `sigil proxy: ${STATUS_CODES[status]?.toLowerCase() ?? 'bad request'}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${SIGIL_ERROR_HEADER}: ${reason}\r\n` +
      `content-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
  const cancel = guard.clock.setTimer(CLIENT_ERROR_LINGER_MS, () => socket.destroy());
  socket.once('close', cancel);
}

function remoteOf(socket: Duplex): string | undefined {
  return (socket as Duplex & { remoteAddress?: string }).remoteAddress;
}
