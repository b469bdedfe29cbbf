// One request rate as a token bucket: the shared TokenBucket (src/spiffe, lazy refill) with the
// admission rule requests need. A request takes one whole token or is refused and told how long
// until one is there (Retry-After); unlike the agent API's batches there is no overdraft, since
// every request costs the same. Every method takes the time, read once per request by the caller:
// a request looks at two buckets, and a clock read costs about 120 ns on a VM, more than the rest.
import type { Clock } from '../../spiffe/clock.js';
import { TokenBucket } from '../../spiffe/token-bucket.js';

/** A configured rate: tokens per second, and how many the bucket holds (its burst). */
export interface RequestRate {
  /** From 0.1 to 1,000,000. */
  readonly requestsPerSecond: number;
  /** Whole requests, from 1 to 10,000,000; the bucket starts full. */
  readonly burst: number;
}

export class RequestBucket extends TokenBucket {
  constructor(
    clock: Clock,
    readonly rate: RequestRate,
  ) {
    super({ clock, ratePerSecond: rate.requestsPerSecond, capacity: rate.burst });
  }

  /** 0 when a token is there to take at `nowMs`, else the milliseconds until one is. Takes nothing. */
  waitMs(nowMs: number): number {
    const tokens = this.tokensAt(nowMs);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / this.rate.requestsPerSecond);
  }

  /** Takes a token if there is one at `nowMs` and returns 0, else returns the milliseconds until one is. */
  take(nowMs: number): number {
    const waitMs = this.waitMs(nowMs);
    if (waitMs === 0) this.spend(1, nowMs);
    return waitMs;
  }

  /** A full bucket is indistinguishable from a new one, so forgetting it loses nothing. */
  isFull(nowMs: number): boolean {
    return this.tokensAt(nowMs) >= this.rate.burst;
  }
}
