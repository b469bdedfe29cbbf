// Two event tallies over a sliding time window, as a ring of buckets advanced lazily from the time
// each call passes in: no timers, no allocation after construction, at most `buckets` slots cleared
// per call. Shared by the retry budget (requests, retries) and outlier detection (tries, failures).
// The window is approximate by one bucket: it covers the last `buckets - 1` whole buckets plus the
// current partial one.

/** Ten buckets: the window's edge moves in steps of a tenth of it (1 s for the default 10 s). */
export const DEFAULT_BUCKETS = 10;

export class SlidingWindow {
  private readonly bucketMs: number;
  private readonly firsts: Float64Array;
  private readonly seconds: Float64Array;
  /** The absolute bucket number (time / bucketMs) the head slot holds; -Infinity before any use. */
  private headBucket = Number.NEGATIVE_INFINITY;
  private firstTotal = 0;
  private secondTotal = 0;

  constructor(windowMs: number, buckets = DEFAULT_BUCKETS) {
    // A zero window still needs a positive bucket: it then holds only the current millisecond's events.
    this.bucketMs = Math.max(windowMs / buckets, 1);
    this.firsts = new Float64Array(buckets);
    this.seconds = new Float64Array(buckets);
  }

  /** The first tally over the window as of the last `advance`. */
  get first(): number {
    return this.firstTotal;
  }

  /** The second tally over the window as of the last `advance`. */
  get second(): number {
    return this.secondTotal;
  }

  /** Moves the window to `nowMs`, dropping buckets that fell out of it. A clock that steps back changes nothing. */
  advance(nowMs: number): void {
    const bucket = Math.floor(nowMs / this.bucketMs);
    const steps = bucket - this.headBucket;
    if (steps <= 0) return;
    const size = this.firsts.length;
    if (steps >= size) {
      this.clear();
    } else {
      for (let i = 1; i <= steps; i++) {
        const slot = slotOf(bucket - steps + i, size);
        this.firstTotal -= this.firsts[slot];
        this.secondTotal -= this.seconds[slot];
        this.firsts[slot] = 0;
        this.seconds[slot] = 0;
      }
    }
    this.headBucket = bucket;
  }

  /** Adds to the current bucket; call `advance` first. */
  add(first: number, second: number): void {
    const slot = slotOf(this.headBucket, this.firsts.length);
    this.firsts[slot] += first;
    this.seconds[slot] += second;
    this.firstTotal += first;
    this.secondTotal += second;
  }

  clear(): void {
    this.firsts.fill(0);
    this.seconds.fill(0);
    this.firstTotal = 0;
    this.secondTotal = 0;
  }
}

/** `bucket` mod `size`, non-negative for a clock before the epoch too. */
function slotOf(bucket: number, size: number): number {
  return ((bucket % size) + size) % size;
}
