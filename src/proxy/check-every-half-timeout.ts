// The one timer loop behind the proxy's idle timeouts (opaque pipes in guard.ts, HTTP/2 sessions in
// inbound/h2-watch.ts): a check every half of the timeout, so a timeout fires between 1x and 1.5x
// its value while nothing runs per byte, chunk or stream. One timer per connection at a time, on
// the listener's clock, cancelled when the connection closes. Not for node:http's own sweep
// (http-client-error.ts checkingIntervalMs), which is also capped at 30s.
import type { EventEmitter } from 'node:events';
import type { Clock } from '../spiffe/clock.js';

/** Checking more often than this costs more than it saves, even for very short test timeouts. */
const MIN_CHECK_INTERVAL_MS = 250;

/**
 * Calls `check` every half of `timeoutMs` (at least MIN_CHECK_INTERVAL_MS apart) until it returns
 * true (the connection is closed, or it closed it) or `connection` emits `close`.
 */
export function checkEveryHalfTimeout(
  clock: Clock,
  timeoutMs: number,
  connection: EventEmitter,
  check: () => boolean,
): void {
  const everyMs = Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(timeoutMs / 2));
  let cancel: (() => void) | null = null;
  const tick = () => {
    cancel = null;
    if (!check()) cancel = clock.setTimer(everyMs, tick);
  };
  cancel = clock.setTimer(everyMs, tick);
  connection.once('close', () => cancel?.());
}
