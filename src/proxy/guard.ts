// What a listener does when it refuses a connection or request, or closes one on a timeout: count
// it (sigil_proxy_refusals_total, sigil_proxy_timeouts_total) and log it, at most one line per
// reason every LOG_INTERVAL_MS. A flood of bad connections is exactly when unthrottled logging
// would become the attack (disk, CPU, the log pipeline), so lines held back are counted and the
// next line carries that count. Idle timeouts are routine and logged at debug only.
import type { Server, Socket } from 'node:net';
import type { Clock } from '../spiffe/clock.js';
import { capConnections as capServerConnections } from '../spiffe/connection-cap.js';
import { checkEveryHalfTimeout } from './check-every-half-timeout.js';
import type { REFUSAL_STATUS } from './errors.js';
import type { ListenerLimits } from './limits.js';
import type { ProxyLogger } from './logger.js';
import type { ProxyMetrics } from './metrics.js';

/** One line per reason per listener per 10s: enough to see an attack start, too few to feed it. */
const LOG_INTERVAL_MS = 10_000;

/** What a request was refused for (errors.ts), or a connection only a listener refuses. */
export type RefusalReason = keyof typeof REFUSAL_STATUS | 'max-connections' | 'accept-failed';

export type TimeoutKind = 'header' | 'request' | 'idle' | 'stream-idle' | 'tcp-idle';

const ROUTINE_TIMEOUTS: ReadonlySet<TimeoutKind> = new Set(['idle', 'stream-idle', 'tcp-idle']);

export interface ListenerGuard {
  readonly listener: string;
  readonly limits: ListenerLimits;
  /** The listener's clock, for the timers it arms itself. */
  readonly clock: Clock;
  /** Counts a refusal and logs it (warn, rate-limited). `fields` must hold no secrets. */
  refused(reason: RefusalReason, fields: Record<string, unknown>): void;
  /** Counts a timeout; header and request timeouts are logged at warn (rate-limited), idle ones at debug. */
  timedOut(kind: TimeoutKind, fields: Record<string, unknown>): void;
}

export interface ListenerGuardOptions {
  readonly listener: string;
  readonly limits: ListenerLimits;
  readonly metrics: ProxyMetrics;
  readonly logger: ProxyLogger;
  readonly clock: Clock;
}

export function createListenerGuard(options: ListenerGuardOptions): ListenerGuard {
  const { listener, metrics, logger, clock } = options;
  /** Per reason: when a line was last written, and how many were held back since. */
  const logged = new Map<string, { atMs: number; heldBack: number }>();
  const logLimited = (key: string, fields: Record<string, unknown>, message: string) => {
    const nowMs = clock.nowMs();
    const last = logged.get(key);
    if (last !== undefined && nowMs - last.atMs < LOG_INTERVAL_MS) {
      last.heldBack++;
      return;
    }
    const heldBack = last?.heldBack ?? 0;
    logged.set(key, { atMs: nowMs, heldBack: 0 });
    logger.warn({ listener, ...fields, ...(heldBack > 0 ? { similar_not_logged: heldBack } : {}) }, message);
  };
  return {
    listener,
    limits: options.limits,
    clock,
    refused(reason, fields) {
      metrics.refusals.inc({ listener, reason });
      logLimited(reason, { reason, ...fields }, 'Refused');
    },
    timedOut(kind, fields) {
      metrics.timeouts.inc({ listener, timeout: kind });
      if (ROUTINE_TIMEOUTS.has(kind))
        logger.debug({ listener, timeout: kind, ...fields }, 'Closed on timeout');
      else logLimited(`timeout:${kind}`, { timeout: kind, ...fields }, 'Closed on timeout');
    },
  };
}

/** Caps a listening server's open connections; drops and failed accepts are refusals of this listener. */
export function capConnections(server: Server, guard: ListenerGuard): void {
  const { maxConnections } = guard.limits;
  capServerConnections(server, maxConnections, {
    onDrop: (remote) => guard.refused('max-connections', { remote, max_connections: maxConnections }),
    onAcceptError: (err) => guard.refused('accept-failed', { error: err.code ?? err.message }),
  });
}

/**
 * Closes an opaque pipe (or upgraded connection) after `tcpIdleTimeoutMs` without a byte either
 * way. Give it the plain side of the pipe: one timer per connection on the listener's clock, every
 * half timeout, compares the socket's byte counters with their last values, so nothing runs per
 * chunk; the pipe closes between 1x and 1.5x the timeout after its last byte. Destroying `socket`
 * closes its partner through the pipe.
 */
export function closeWhenIdle(socket: Socket, guard: ListenerGuard, fields: Record<string, unknown>): void {
  const { clock } = guard;
  const timeoutMs = guard.limits.tcpIdleTimeoutMs;
  let seen = socket.bytesRead + socket.bytesWritten;
  let quietSinceMs = clock.nowMs();
  checkEveryHalfTimeout(clock, timeoutMs, socket, () => {
    if (socket.destroyed) return true;
    const progress = socket.bytesRead + socket.bytesWritten;
    const nowMs = clock.nowMs();
    if (progress !== seen) {
      seen = progress;
      quietSinceMs = nowMs;
      return false;
    }
    if (nowMs - quietSinceMs < timeoutMs) return false;
    guard.timedOut('tcp-idle', { ...fields, timeout_ms: timeoutMs });
    socket.destroy();
    return true;
  });
}
