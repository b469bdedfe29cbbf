// A token bucket per key, on the injected Clock: per agent SPIFFE ID for signing (SignX509Svids,
// MintJwtSvid, RenewAgentSvid), per source IP address for attestation. A call is admitted while its
// key's bucket holds a token and is charged `cost` tokens, possibly overdrawing: a starting agent's
// 500-CSR batch goes through even with a small burst, and the agent then waits until the bucket
// refills, so the sustained rate holds. Refused calls cost nothing. Callers word the refusal.

import type { Clock } from '../../../spiffe/clock.js';

/** Buckets are swept of keys back at a full bucket once the map doubles past this size. */
const MIN_SWEEP_SIZE = 1024;

interface Bucket {
  tokens: number;
  atMs: number;
  /** Whether this key was refused since it was last admitted: one log line per episode, not per call. */
  refusing: boolean;
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
    const nowMs = this.options.clock.nowMs();
    const bucket = this.refilled(key, nowMs);
    if (bucket.tokens < 1) {
      const retryAfterS = Math.ceil(((1 - bucket.tokens) / this.options.ratePerSecond) * 10) / 10;
      const firstOfEpisode = !bucket.refusing;
      bucket.refusing = true;
      return { retryAfterS, firstOfEpisode };
    }
    bucket.tokens -= cost;
    bucket.refusing = false;
    if (this.buckets.size > this.sweepAtSize) this.sweep(nowMs);
    return null;
  }

  private refilled(key: string, nowMs: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.options.burst, atMs: nowMs, refusing: false };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = this.tokensAt(bucket, nowMs);
    bucket.atMs = nowMs;
    return bucket;
  }

  /** What `bucket` holds at `nowMs`: its tokens plus the refill since it was last updated, at most a burst. */
  private tokensAt(bucket: Bucket, nowMs: number): number {
    const elapsedMs = Math.max(0, nowMs - bucket.atMs);
    return Math.min(this.options.burst, bucket.tokens + (elapsedMs * this.options.ratePerSecond) / 1000);
  }

  /** Forgets keys whose bucket is full again: they are indistinguishable from new ones. */
  private sweep(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (this.tokensAt(bucket, nowMs) >= this.options.burst) this.buckets.delete(key);
    }
    this.sweepAtSize = Math.max(MIN_SWEEP_SIZE, 2 * this.buckets.size);
  }
}
