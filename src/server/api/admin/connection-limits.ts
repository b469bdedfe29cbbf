// Applies admin_api's limits to the node:http(s) server fastify builds, and answers the clients
// Node cuts off. node:http enforces headersTimeout and requestTimeout itself, from one sweep over its
// connection list; fastify then overwrites requestTimeout, keepAliveTimeout and the socket timeout
// with its own defaults (0, 72 s, 0), so each value is given to both. The connection cap and the
// handshake timeout only concern the mTLS listener: the Unix socket is owner-only, and whoever can
// connect to it runs as the server's user and could as well stop the server or read its keys, so a
// cap there would protect nothing and could lock the operator's CLI out behind a leaking script.
import { maxHeaderSize, STATUS_CODES } from 'node:http';
import type { Server } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyServerOptions } from 'fastify';
import type { Clock } from '../../../spiffe/clock.js';
import { formatDuration } from '../../../spiffe/duration.js';
import type { RefusalLog } from '../refusal-log.js';
import type { AdminApiLimits } from './limits.js';

export type AdminRefusal =
  | 'connection-cap'
  | 'handshake'
  | 'header-timeout'
  | 'request-timeout'
  | 'header-too-large'
  | 'bad-request';

/** node:http's own sweep interval for expired heads and bodies, kept as the upper bound. */
const NODE_CHECK_INTERVAL_MS = 30_000;
/** Sweeping more often than this costs more than it saves, even for very short test timeouts. */
const MIN_CHECK_INTERVAL_MS = 250;
/**
 * After answering a slow or malformed request the socket is ended; a client that never closes its
 * side would keep it half-open, so it is destroyed after this. Long enough for the answer to leave.
 */
const CLIENT_ERROR_LINGER_MS = 2_000;

/** Status and message of each refusal answered over HTTP; the message names the limit. */
function answerFor(reason: AdminRefusal, limits: AdminApiLimits, code: string): [number, string] {
  switch (reason) {
    case 'header-timeout':
      return [
        408,
        `request head not received within ${formatDuration(limits.headerTimeoutMs)} (admin_api.header_timeout)`,
      ];
    case 'request-timeout':
      return [
        408,
        `request not received within ${formatDuration(limits.requestTimeoutMs)} (admin_api.request_timeout)`,
      ];
    case 'header-too-large':
      return [431, `request head larger than ${maxHeaderSize / 1024} KiB`];
    default:
      return [400, `malformed HTTP request (${code})`];
  }
}

/**
 * Fastify options bounding every connection: `https` (the mTLS listener's TLS options) gets the
 * handshake timeout; without it the server is plain HTTP (the Unix socket).
 */
export function limitedServerOptions(
  limits: AdminApiLimits,
  refusals: RefusalLog<AdminRefusal>,
  clock: Clock,
  https?: Record<string, unknown>,
): Partial<FastifyServerOptions> & Record<string, unknown> {
  const node = {
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Half the header timeout, so a slow head is cut between 1x and 1.5x header_timeout.
    connectionsCheckingInterval: Math.min(
      NODE_CHECK_INTERVAL_MS,
      Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(limits.headerTimeoutMs / 2)),
    ),
  };
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // The socket timeout: nothing moving either way for this long, e.g. a client that stopped
    // reading its answer, which neither the request nor the keep-alive timeout covers.
    connectionTimeout: limits.idleTimeoutMs,
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Duplex) =>
      answerClientError(err, socket, { limits, refusals, clock }),
    ...(https
      ? { https: { ...https, ...node, handshakeTimeout: limits.handshakeTimeoutMs } }
      : { http: node }),
  };
}

/** Caps the server's connections; Node closes the next one at once and reports it here. */
export function capConnections(server: Server, maxConnections: number, refusals: RefusalLog<AdminRefusal>) {
  server.maxConnections = maxConnections;
  server.on('drop', (data?: { remoteAddress?: string }) =>
    refusals.note('connection-cap', data?.remoteAddress ?? 'unknown'),
  );
}

interface ServerSocketState {
  /** node:http's parser; `incoming` is the request being read, if its head is complete. */
  parser?: { incoming?: { complete: boolean } | null } | null;
  /** The response in flight on this socket, if any. */
  _httpMessage?: { headersSent: boolean } | null;
  remoteAddress?: string;
}

/**
 * Node calls this for a failed TLS handshake, a request it cannot parse and the timeouts it
 * enforces. fastify's default writes its answer and destroys the socket at once, which on a TLS
 * socket discards the answer unsent; here the answer is sent, then the socket closed.
 */
function answerClientError(
  err: NodeJS.ErrnoException,
  socket: Duplex,
  { limits, refusals, clock }: { limits: AdminApiLimits; refusals: RefusalLog<AdminRefusal>; clock: Clock },
): void {
  const state = socket as Duplex & ServerSocketState;
  const code = err.code ?? '';
  const peer = state.remoteAddress ?? 'local';
  if (/^ERR_(TLS|SSL)_/.test(code)) {
    refusals.note('handshake', peer, code);
    socket.destroy();
    return;
  }
  if (code !== 'ERR_HTTP_REQUEST_TIMEOUT' && !code.startsWith('HPE_')) {
    // A reset or a write after the peer left: nobody to answer, nothing refused.
    socket.destroy();
    return;
  }
  let reason: AdminRefusal;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    const incoming = state.parser?.incoming;
    reason = incoming && !incoming.complete ? 'request-timeout' : 'header-timeout';
  } else {
    reason = code === 'HPE_HEADER_OVERFLOW' ? 'header-too-large' : 'bad-request';
  }
  refusals.note(reason, peer, reason === 'bad-request' ? code : undefined);
  if (socket.destroyed || !socket.writable || state._httpMessage?.headersSent) {
    // A response is already under way: a second status line would corrupt it.
    socket.destroy();
    return;
  }
  const [status, message] = answerFor(reason, limits, code);
  const body = JSON.stringify({ error: { code: 'ERR_INPUT_INVALID', message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  const cancel = clock.setTimer(CLIENT_ERROR_LINGER_MS, () => socket.destroy());
  socket.once('close', cancel);
}
