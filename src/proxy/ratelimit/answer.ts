// What a caller over a rate limit gets: HTTP/1.1 and relayed HTTP/2 streams a 429 with
// `Retry-After` in whole seconds (rounded up, at least 1; RFC 9110 §10.2.3 has no fractions) and
// `x-sigil-error: rate-limited`; gRPC clients read an HTTP 429 as UNAVAILABLE, which they may retry.
// Opaque connections are closed by the listener: there is no protocol to answer in.
import type { ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { writeAnswer } from '../../spiffe/http-client-error.js';
import { REFUSAL_STATUS, SIGIL_ERROR_HEADER } from '../errors.js';
import type { RateLimitRefusal } from './limiter.js';

export const RATE_LIMITED = 'rate-limited';
const STATUS = REFUSAL_STATUS[RATE_LIMITED];

/** The `Retry-After` value for a wait of `retryAfterMs`. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

function text(seconds: number): string {
  return `sigil proxy: rate limit exceeded; retry after ${seconds}s\n`;
}

export function respondRateLimited(res: ServerResponse, refusal: RateLimitRefusal): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const seconds = retryAfterSeconds(refusal.retryAfterMs);
  const body = text(seconds);
  res.writeHead(STATUS, [
    SIGIL_ERROR_HEADER,
    RATE_LIMITED,
    'retry-after',
    String(seconds),
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(body)),
  ]);
  res.end(body);
}

/** A refused WebSocket (or other) upgrade, on its raw socket, which is then closed. */
export function refuseUpgradeRateLimited(socket: Duplex, refusal: RateLimitRefusal): void {
  const seconds = retryAfterSeconds(refusal.retryAfterMs);
  writeAnswer(socket, {
    status: STATUS,
    headers: {
      [SIGIL_ERROR_HEADER]: RATE_LIMITED,
      'retry-after': String(seconds),
      'content-type': 'text/plain; charset=utf-8',
    },
    body: text(seconds),
  });
}

export function respondStreamRateLimited(stream: ServerHttp2Stream, refusal: RateLimitRefusal): void {
  if (stream.destroyed || stream.headersSent) return;
  const seconds = retryAfterSeconds(refusal.retryAfterMs);
  stream.respond({
    ':status': STATUS,
    [SIGIL_ERROR_HEADER]: RATE_LIMITED,
    'retry-after': String(seconds),
    'content-type': 'text/plain; charset=utf-8',
  });
  stream.end(text(seconds));
}
