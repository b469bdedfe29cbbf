// Deciding whether one inbound request (or opaque connection) may go on, for one listener: a total
// bucket for the listener and a bucket per caller, keyed by the caller's verified SPIFFE ID (or
// PLAINTEXT_CALLER for every plaintext caller of a permissive listener), sized by an override for
// that ID or else the per-caller rate. A request must pass its caller's limit and the total; one
// refused by either spends no token of the other. Pure: time comes in as an argument (the buckets
// hold the clock only to start); enforce.ts counts and logs.
import type { Clock } from '../../spiffe/clock.js';
import { RequestBucket, type RequestRate } from './token-bucket.js';

/** The limit that refused a request, as the metric's `limit` label names it. */
export type RateLimitKind = 'total' | 'per_caller' | 'override';

export interface RateLimitOverride extends RequestRate {
  /** Exact SPIFFE IDs, or `spiffe://<trust domain>/*` for every ID of a trust domain. */
  readonly principals: readonly string[];
}

/** A listener's `rate_limit`, checked (config.ts); plain data, so /config shows it as is. */
export interface RateLimitConfig {
  readonly total: RequestRate | null;
  readonly perCaller: RequestRate | null;
  readonly overrides: readonly RateLimitOverride[];
}

export interface RateLimitRefusal {
  readonly limit: RateLimitKind;
  /** Until the refusing bucket holds a token again. */
  readonly retryAfterMs: number;
}

/** The one key every plaintext caller (permissive mode) shares: they have no identity to tell apart. */
export const PLAINTEXT_CALLER = 'plaintext';
/**
 * Callers with a bucket of their own. A sidecar's callers are a few services' sidecars; 10,000
 * buckets (about 1 MB) is far above that and still bounds what a flood of identities can cost.
 */
export const DEFAULT_MAX_CALLERS = 10_000;
/** At the cap, at most this many buckets used since the last eviction get a second chance. */
const SECOND_CHANCES = 32;
const WILDCARD_SUFFIX = '/*';
const SCHEME = 'spiffe://';

class CallerBucket extends RequestBucket {
  /** Used since it was created or last given a second chance (evict()). */
  isReferenced = false;

  constructor(
    clock: Clock,
    rate: RequestRate,
    readonly limit: 'per_caller' | 'override',
  ) {
    super(clock, rate);
  }
}

export class RateLimiter {
  private readonly total: RequestBucket | null;
  private readonly perCaller: RequestRate | null;
  /** Override rates by exact SPIFFE ID, and by trust domain ID (`spiffe://td`) for wildcards. */
  private readonly exact = new Map<string, RequestRate>();
  private readonly byTrustDomain = new Map<string, RequestRate>();
  /** In insertion order, which evict() turns into an approximate least-recently-used order. */
  private readonly callers = new Map<string, CallerBucket>();
  /** Whether any caller can have a bucket at all. */
  private readonly limitsCallers: boolean;

  constructor(
    config: RateLimitConfig,
    private readonly options: { readonly clock: Clock; readonly maxCallers?: number },
  ) {
    this.total = config.total === null ? null : new RequestBucket(options.clock, config.total);
    this.perCaller = config.perCaller;
    for (const override of config.overrides) {
      for (const principal of override.principals) {
        if (principal.endsWith(WILDCARD_SUFFIX))
          this.byTrustDomain.set(principal.slice(0, -WILDCARD_SUFFIX.length), override);
        else this.exact.set(principal, override);
      }
    }
    this.limitsCallers = this.perCaller !== null || config.overrides.length > 0;
  }

  /**
   * Admits one request from `caller` (a SPIFFE ID or PLAINTEXT_CALLER) at `nowMs` (read from the
   * limiter's clock): null, or which limit refused it.
   */
  check(caller: string, nowMs: number): RateLimitRefusal | null {
    const bucket = this.limitsCallers ? this.bucketOf(caller, nowMs) : null;
    if (bucket !== null) {
      const waitMs = bucket.waitMs(nowMs);
      if (waitMs > 0) return { limit: bucket.limit, retryAfterMs: waitMs };
    }
    if (this.total !== null) {
      const waitMs = this.total.take(nowMs);
      if (waitMs > 0) return { limit: 'total', retryAfterMs: waitMs };
    }
    bucket?.spend(1, nowMs);
    return null;
  }

  /** Callers holding a bucket now. */
  get callerCount(): number {
    return this.callers.size;
  }

  private bucketOf(caller: string, nowMs: number): CallerBucket | null {
    let bucket = this.callers.get(caller);
    if (bucket !== undefined) {
      // A flag, not a move to the end of the map: reordering a Map costs a delete and an insert
      // on every request (~250 ns); evict() reads the flags only when the map is full.
      bucket.isReferenced = true;
      return bucket;
    }
    const override = this.overrideOf(caller);
    const rate = override ?? this.perCaller;
    if (rate === null) return null;
    if (this.callers.size >= (this.options.maxCallers ?? DEFAULT_MAX_CALLERS)) this.evict(nowMs);
    bucket = new CallerBucket(this.options.clock, rate, override === undefined ? 'per_caller' : 'override');
    this.callers.set(caller, bucket);
    return bucket;
  }

  private overrideOf(caller: string): RequestRate | undefined {
    const exact = this.exact.get(caller);
    if (exact !== undefined || this.byTrustDomain.size === 0 || !caller.startsWith(SCHEME)) return exact;
    const pathAt = caller.indexOf('/', SCHEME.length);
    return this.byTrustDomain.get(pathAt === -1 ? caller : caller.slice(0, pathAt));
  }

  /**
   * Makes room for one bucket, oldest first, as the CLOCK (second chance) approximation of least
   * recently used: a full bucket goes at once (forgetting it changes nothing); one used since it was
   * last looked at moves to the end with its flag cleared, at most SECOND_CHANCES times; the first
   * other one goes, and that caller starts again from a full burst, the price of a bounded map.
   */
  private evict(nowMs: number): void {
    let chances = 0;
    for (const [caller, bucket] of this.callers) {
      if (bucket.isReferenced && !bucket.isFull(nowMs) && chances < SECOND_CHANCES) {
        chances++;
        bucket.isReferenced = false;
        // Re-inserted at the end; the iteration reaches it again only after every older bucket.
        this.callers.delete(caller);
        this.callers.set(caller, bucket);
        continue;
      }
      this.callers.delete(caller);
      return;
    }
  }
}
