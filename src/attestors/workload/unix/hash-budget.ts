// How much binary hashing the unix attestor may do: the pure decision, on an injected Clock.
// Hashing is the one attestation step whose cost a workload controls (touch a large binary and the
// next call re-reads it), so it is bounded twice: each binary (device + inode) is hashed again at
// most once per `rehashIntervalMs`, and all hashing shares a byte budget (a token bucket refilled at
// `bytesPerSecond`). A refused hash is not replaced by a stale one: the caller is told to retry.
import type { Clock } from '../../../spiffe/clock.js';
import { formatDuration } from '../../../spiffe/duration.js';
import { TokenBucket } from '../../../spiffe/token-bucket.js';

/** Bounds memory: binaries whose last hash time is remembered; the least recently hashed go first. */
const MAX_TRACKED_BINARIES = 1024;

export interface HashBudgetOptions {
  readonly clock: Clock;
  /** A binary already hashed is hashed again (its content key changed) at most this often. */
  readonly rehashIntervalMs: number;
  /** Refill rate of the shared byte budget. */
  readonly bytesPerSecond: number;
  /** Capacity of the shared byte budget: what may be hashed at once after a quiet period. */
  readonly burstBytes: number;
}

export class HashBudget {
  /** Binary id → when it was last hashed; Map order is the LRU order. */
  private readonly lastHashedAtMs = new Map<string, number>();
  private readonly bytes: TokenBucket;

  constructor(private readonly options: HashBudgetOptions) {
    this.bytes = new TokenBucket({
      clock: options.clock,
      ratePerSecond: options.bytesPerSecond,
      capacity: options.burstBytes,
    });
  }

  /**
   * Charges a hash of `sizeBytes` of binary `binaryId` and returns undefined, or returns why it is
   * refused (and charges nothing).
   */
  take(binaryId: string, sizeBytes: number): string | undefined {
    const nowMs = this.options.clock.nowMs();
    const last = this.lastHashedAtMs.get(binaryId);
    if (last !== undefined && nowMs - last < this.options.rehashIntervalMs) {
      const { rehashIntervalMs } = this.options;
      return `it changed since it was hashed ${formatDuration(nowMs - last)} ago, and a binary is hashed at most once per ${formatDuration(rehashIntervalMs)}; retry in ${formatDuration(rehashIntervalMs - (nowMs - last))}`;
    }
    // Never overdrawn: a binary larger than what is left waits for the bucket to hold all of it.
    if (sizeBytes > this.bytes.tokens) {
      return `the agent's hashing budget (${this.options.bytesPerSecond} bytes/s) is spent; retry later`;
    }
    this.bytes.spend(sizeBytes);
    this.lastHashedAtMs.delete(binaryId);
    this.lastHashedAtMs.set(binaryId, nowMs);
    if (this.lastHashedAtMs.size > MAX_TRACKED_BINARIES) {
      this.lastHashedAtMs.delete(this.lastHashedAtMs.keys().next().value!);
    }
    return undefined;
  }
}
