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
    const { clock, ratePerSecond, capacity } = this.options;
    const nowMs = clock.nowMs();
    // A clock stepped backwards adds nothing rather than taking tokens away.
    const elapsedMs = Math.max(0, nowMs - this.refilledAtMs);
    this.available = Math.min(capacity, this.available + (elapsedMs * ratePerSecond) / 1000);
    this.refilledAtMs = nowMs;
    return this.available;
  }

  /** Takes `cost` tokens, overdrawing if the caller's rule allows it; a debt is repaid by the refill. */
  spend(cost: number): void {
    this.available = this.tokens - cost;
  }
}
