// Connections a listener refuses (over a cap, a failed or late TLS handshake, a slow or malformed
// request) are counted, and logged: the first of each reason at once, then at most one line per
// reason per interval with how many were refused meanwhile, so a flood does not flood the log.
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { Clock } from '../../spiffe/clock.js';
import type { ConnectionCapHooks } from '../../spiffe/connection-cap.js';

/** Refusals of one reason are logged at most once per this interval, with a count. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface RefusalLog<Reason extends string> {
  note(reason: Reason, peer: string, detail?: string): void;
  close(): void;
}

export function refusalLog<Reason extends string>(options: {
  readonly clock: Clock;
  readonly logger: Logger;
  /** The log line's message, e.g. "Agent API connections refused". */
  readonly message: string;
  readonly counter: Counter<'reason'>;
}): RefusalLog<Reason> {
  const { clock, logger, message, counter } = options;
  const windows = new Map<Reason, { count: number; lastPeer: string; cancel: () => void }>();
  const report = (reason: Reason, count: number, lastPeer: string, detail?: string) =>
    logger.warn({ reason, count, lastPeer, ...(detail ? { detail } : {}) }, message);
  const openWindow = (reason: Reason, lastPeer: string) => {
    const window = {
      count: 0,
      lastPeer,
      cancel: clock.setTimer(REFUSAL_LOG_INTERVAL_MS, () => {
        windows.delete(reason);
        if (window.count > 0) {
          report(reason, window.count, window.lastPeer);
          openWindow(reason, window.lastPeer);
        }
      }),
    };
    windows.set(reason, window);
  };
  return {
    close: () => {
      for (const window of windows.values()) window.cancel();
      windows.clear();
    },
    note(reason, peer, detail) {
      counter.inc({ reason });
      const window = windows.get(reason);
      if (window === undefined) {
        report(reason, 1, peer, detail);
        openWindow(reason, peer);
      } else {
        window.count++;
        window.lastPeer = peer;
      }
    },
  };
}

/**
 * capConnections hooks noting a connection past the cap as `connection-cap`, and a failed accept
 * (which has no peer yet) as `accept-failed` with its error code.
 */
export function connectionCapRefusals(
  refusals: RefusalLog<'connection-cap' | 'accept-failed'>,
): ConnectionCapHooks {
  return {
    onDrop: (remote) => refusals.note('connection-cap', remote ?? 'unknown'),
    onAcceptError: (err) => refusals.note('accept-failed', 'unknown', err.code ?? err.message),
  };
}
