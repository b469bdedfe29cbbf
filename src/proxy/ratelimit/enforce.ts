// Enforcing one listener's rate limits: asks the limiter (limiter.ts decides), counts refusals in
// sigil_proxy_rate_limited_total by caller and limit, and logs them at most one line per caller
// every LOG_INTERVAL_MS with the count held back, since a caller over its limit is sending fast by
// definition and a line per refusal would flood the log. The listener answers (answer.ts).
import type { Clock } from '../../spiffe/clock.js';
import type { ProxyLogger } from '../logger.js';
import type { CountCell, ProxyMetrics } from '../metrics.js';
import {
  PLAINTEXT_CALLER,
  type RateLimitConfig,
  RateLimiter,
  type RateLimitKind,
  type RateLimitRefusal,
} from './limiter.js';

/** One line per caller per 10 s, as the listener guard paces its refusal lines. */
const LOG_INTERVAL_MS = 10_000;
/**
 * Distinct `principal` label values per listener: past them refusals count under OTHER_PRINCIPALS.
 * Label sets never shrink, so this bounds the metric (and the pacing state) whatever callers come.
 */
export const DEFAULT_MAX_PRINCIPAL_LABELS = 1_000;
export const OTHER_PRINCIPALS = 'other';

export interface RateLimitGateOptions {
  readonly listener: string;
  readonly config: RateLimitConfig;
  readonly clock: Clock;
  readonly metrics: Pick<ProxyMetrics, 'rateLimitedCell'>;
  readonly logger: ProxyLogger;
  /** Our own SPIFFE ID now, for the log line. */
  readonly ownId: () => string;
  /** Callers with a bucket of their own; DEFAULT_MAX_CALLERS (limiter.ts) by default. */
  readonly maxCallers?: number;
  /** DEFAULT_MAX_PRINCIPAL_LABELS by default. */
  readonly maxPrincipalLabels?: number;
}

export interface RateLimitGate {
  /**
   * Admits one request or connection of `principal` (null: plaintext): null, or why not. Counts
   * and logs refusals.
   */
  admit(principal: string | null): RateLimitRefusal | null;
}

/** What the metric and the log keep per caller label. */
interface CallerRecord {
  readonly cells: Partial<Record<RateLimitKind, CountCell>>;
  loggedAtMs: number;
  heldBack: number;
}

export function createRateLimitGate(options: RateLimitGateOptions): RateLimitGate {
  const { listener, clock, metrics, logger } = options;
  const limiter = new RateLimiter(options.config, { clock, maxCallers: options.maxCallers });
  const maxLabels = options.maxPrincipalLabels ?? DEFAULT_MAX_PRINCIPAL_LABELS;
  const records = new Map<string, CallerRecord>();
  const newRecord = (): CallerRecord => ({ cells: {}, loggedAtMs: Number.NEGATIVE_INFINITY, heldBack: 0 });
  const other = newRecord();

  const refused = (caller: string, refusal: RateLimitRefusal, nowMs: number) => {
    let record = records.get(caller);
    let label = caller;
    if (record === undefined) {
      if (records.size < maxLabels) {
        record = newRecord();
        records.set(caller, record);
      } else {
        record = other;
        label = OTHER_PRINCIPALS;
      }
    }
    const cells = record.cells;
    cells[refusal.limit] ??= metrics.rateLimitedCell(listener, label, refusal.limit);
    cells[refusal.limit]!.value++;
    if (nowMs - record.loggedAtMs < LOG_INTERVAL_MS) {
      record.heldBack++;
      return;
    }
    const heldBack = record.heldBack;
    record.loggedAtMs = nowMs;
    record.heldBack = 0;
    logger.warn(
      {
        listener,
        source_id: caller,
        destination_id: options.ownId(),
        limit: refusal.limit,
        retry_after_ms: refusal.retryAfterMs,
        ...(heldBack > 0 ? { similar_not_logged: heldBack } : {}),
      },
      'Rate limited',
    );
  };

  return {
    admit(principal) {
      const caller = principal ?? PLAINTEXT_CALLER;
      const nowMs = clock.nowMs();
      const refusal = limiter.check(caller, nowMs);
      if (refusal !== null) refused(caller, refusal, nowMs);
      return refusal;
    },
  };
}
