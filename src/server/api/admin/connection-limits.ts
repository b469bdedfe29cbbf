// Applies admin_api's limits to the node:http(s) server fastify builds, and answers the clients
// Node cuts off. node:http enforces headersTimeout and requestTimeout itself, from one sweep over its
// connection list; fastify then overwrites requestTimeout, keepAliveTimeout and the socket timeout
// with its own defaults (0, 72 s, 0), so each value is given to both. The connection cap and the
// handshake timeout only concern the mTLS listener: the Unix socket is owner-only, and whoever can
// connect to it runs as the server's user and could as well stop the server or read its keys, so a
// cap there would protect nothing and could lock the operator's CLI out behind a leaking script.
import { maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyServerOptions } from 'fastify';
import type { Clock } from '../../../spiffe/clock.js';
import { formatDuration } from '../../../spiffe/duration.js';
import {
  type ClientErrorAnswer,
  type ClientErrorKind,
  checkingIntervalMs,
  clientErrorHandler,
} from '../../../spiffe/http-client-error.js';
import type { RefusalLog } from '../refusal-log.js';
import type { AdminApiLimits } from './limits.js';

export type AdminRefusal =
  | 'connection-cap'
  | 'accept-failed'
  | 'handshake'
  | 'header-timeout'
  | 'request-timeout'
  | 'header-too-large'
  | 'bad-request';

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
    connectionsCheckingInterval: checkingIntervalMs(limits.headerTimeoutMs),
  };
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // The socket timeout: nothing moving either way for this long, e.g. a client that stopped
    // reading its answer, which neither the request nor the keep-alive timeout covers.
    connectionTimeout: limits.idleTimeoutMs,
    clientErrorHandler: clientErrorHandler(clock, (kind, err, socket) =>
      refuse(kind, err, socket, limits, refusals),
    ),
    ...(https
      ? { https: { ...https, ...node, handshakeTimeout: limits.handshakeTimeoutMs } }
      : { http: node }),
  };
}

/**
 * Counts and logs what Node cut off: a failed TLS handshake closes unanswered; a slow or malformed
 * request is answered with the limit it broke.
 */
function refuse(
  kind: ClientErrorKind,
  err: NodeJS.ErrnoException,
  socket: Duplex,
  limits: AdminApiLimits,
  refusals: RefusalLog<AdminRefusal>,
): ClientErrorAnswer | undefined {
  const code = err.code ?? '';
  const peer = (socket as Duplex & { remoteAddress?: string }).remoteAddress ?? 'local';
  if (kind === 'handshake') {
    refusals.note('handshake', peer, code);
    return undefined;
  }
  refusals.note(kind, peer, kind === 'bad-request' ? code : undefined);
  const [status, message] = answerFor(kind, limits, code);
  return {
    status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ error: { code: 'ERR_INPUT_INVALID', message } }),
  };
}
