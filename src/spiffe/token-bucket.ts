// A token bucket on the injected Clock: it fills at `ratePerSecond` up to `capacity` and is refilled
// lazily, whenever its tokens are read. It holds no admission rule: callers decide whether a cost may
// go through (the agent API overdraws while one token remains; binary hashing needs the full cost).

import type { Clock } from './clock.js';

export interface TokenBucketOptions {
  readonly clock: Clock;
  /** Tokens added per second of clock time. */
  readonly ratePerSecond: number;
  /** The most the bucket holds, and what it starts with. */
  readonly capacity: number;
}

export class TokenBucket {
  private available: number;
  private refilledAtMs: number;

  constructor(private readonly options: TokenBucketOptions) {
    this.available = options.capacity;
    this.refilledAtMs = options.clock.nowMs();
  }

  /** Tokens held now: at most `capacity`, below zero while an overdraft is being repaid. */
  get tokens(): number {
    return this.tokensAt(this.options.clock.nowMs());
  }

  /**
   * Tokens held at `nowMs`, a time read from the bucket's clock: for callers that look at several
   * buckets at one instant and would otherwise pay a clock read per look (about 120 ns on a VM).
   */
  tokensAt(nowMs: number): number {
    const { ratePerSecond, capacity } = this.options;
    // A clock stepped backwards adds nothing rather than taking tokens away.
    const elapsedMs = Math.max(0, nowMs - this.refilledAtMs);
    this.available = Math.min(capacity, this.available + (elapsedMs * ratePerSecond) / 1000);
    this.refilledAtMs = nowMs;
    return this.available;
  }

  /**
   * Takes `cost` tokens (at `nowMs`, by default the clock's now), overdrawing if the caller's rule
   * allows it; a debt is repaid by the refill.
   */
  spend(cost: number, nowMs = this.options.clock.nowMs()): void {
    this.available = this.tokensAt(nowMs) - cost;
  }
}
