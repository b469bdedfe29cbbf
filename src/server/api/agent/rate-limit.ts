// A token bucket per key, on the injected Clock: per agent SPIFFE ID for signing (SignX509Svids,
// MintJwtSvid, RenewAgentSvid), per source IP address for attestation. A call is admitted while its
// key's bucket holds a token and is charged `cost` tokens, possibly overdrawing: a starting agent's
// 500-CSR batch goes through even with a small burst, and the agent then waits until the bucket
// refills, so the sustained rate holds. Refused calls cost nothing. Callers word the refusal.

import type { Clock } from '../../../spiffe/clock.js';
import { TokenBucket } from '../../../spiffe/token-bucket.js';

/** Buckets are swept of keys back at a full bucket once the map doubles past this size. */
const MIN_SWEEP_SIZE = 1024;

class Bucket extends TokenBucket {
  /** Whether this key was refused since it was last admitted: one log line per episode, not per call. */
  refusing = false;
}

export interface RateRefusal {
  /** Seconds until the bucket holds a token again, rounded up to a tenth. */
  readonly retryAfterS: number;
  /** True for the first refusal since the key was last admitted: the one worth logging. */
  readonly firstOfEpisode: boolean;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private sweepAtSize = MIN_SWEEP_SIZE;

  constructor(
    private readonly options: {
      readonly ratePerSecond: number;
      readonly burst: number;
      readonly clock: Clock;
    },
  ) {}

  /** Charges `cost` to `key`; null when admitted, else when to retry. */
  take(key: string, cost: number): RateRefusal | null {
    const bucket = this.bucketOf(key);
    const tokens = bucket.tokens;
    if (tokens < 1) {
      const retryAfterS = Math.ceil(((1 - tokens) / this.options.ratePerSecond) * 10) / 10;
      const firstOfEpisode = !bucket.refusing;
      bucket.refusing = true;
      return { retryAfterS, firstOfEpisode };
    }
    bucket.spend(cost);
    bucket.refusing = false;
    if (this.buckets.size > this.sweepAtSize) this.sweep();
    return null;
  }

  private bucketOf(key: string): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      const { ratePerSecond, burst, clock } = this.options;
      bucket = new Bucket({ clock, ratePerSecond, capacity: burst });
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  /** Forgets keys whose bucket is full again: they are indistinguishable from new ones. */
  private sweep(): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens >= this.options.burst) this.buckets.delete(key);
    }
    this.sweepAtSize = Math.max(MIN_SWEEP_SIZE, 2 * this.buckets.size);
  }
}
