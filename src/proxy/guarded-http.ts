// The node:http server every HTTP/1.1 listener (inbound, outbound, admin) runs on, with the
// listener's header, request and keep-alive timeouts, and malformed requests answered rather than
// dropped. node:http enforces headersTimeout and requestTimeout itself, from one sweep timer per
// server over its connection list (no timer per request), but it only builds that list when the
// server emits `listening`: sockets handed over with emit('connection'), as the inbound listener
// does after the TLS handshake, were never tracked, so a caller could hold a connection forever by
// sending nothing (slowloris). Emitting `listening` on such a server starts Node's own tracking.
import { createServer, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type ClientErrorAnswer,
  type ClientErrorKind,
  checkingIntervalMs,
  clientErrorHandler,
} from '../spiffe/http-client-error.js';
import { REFUSAL_STATUS, SIGIL_ERROR_HEADER } from './errors.js';
import type { ListenerGuard } from './guard.js';

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
    connectionsCheckingInterval: checkingIntervalMs(limits.headerTimeoutMs),
  });
  if (options.emittedConnections) server.emit('listening');
  server.on(
    'clientError',
    clientErrorHandler(guard.clock, (kind, err, socket) => refuse(kind, err, socket, guard)),
  );
  return server;
}

/** Counts the refusal on the listener and answers with its status and `x-sigil-error`. */
function refuse(
  kind: ClientErrorKind,
  err: NodeJS.ErrnoException,
  socket: Duplex,
  guard: ListenerGuard,
): ClientErrorAnswer | undefined {
  // TLS is terminated before sockets reach this server; a handshake error has nobody to answer.
  if (kind === 'handshake') return undefined;
  const remote = (socket as Duplex & { remoteAddress?: string }).remoteAddress;
  if (kind === 'header-timeout' || kind === 'request-timeout') {
    guard.timedOut(kind === 'header-timeout' ? 'header' : 'request', { remote });
  } else {
    guard.refused(kind, { remote, err: err.message, code: err.code });
  }
  const status = REFUSAL_STATUS[kind];
  return {
    status,
    headers: { [SIGIL_ERROR_HEADER]: kind, 'content-type': 'text/plain; charset=utf-8' },
    // Every REFUSAL_STATUS code has a reason phrase in STATUS_CODES.
    body: `sigil proxy: ${STATUS_CODES[status]!.toLowerCase()}\n`,
  };
}
