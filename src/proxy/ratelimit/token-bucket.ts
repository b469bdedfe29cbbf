// One request rate as a token bucket: the shared TokenBucket (src/spiffe, lazy refill on the
// injected Clock) with the admission rule requests need. A request takes one whole token or is
// refused and told how long until one is there (Retry-After); unlike the agent API's batches there
// is no overdraft, since every request costs the same.
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

  /** 0 when a token is there to take now, else the milliseconds until one is. Takes nothing. */
  waitMs(): number {
    const tokens = this.tokens;
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / this.rate.requestsPerSecond);
  }

  /** Takes a token if there is one and returns 0, else returns the milliseconds until one is. */
  take(): number {
    const waitMs = this.waitMs();
    if (waitMs === 0) this.spend(1);
    return waitMs;
  }

  /** A full bucket is indistinguishable from a new one, so forgetting it loses nothing. */
  isFull(): boolean {
    return this.tokens >= this.rate.burst;
  }
}
