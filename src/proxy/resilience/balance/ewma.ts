// Peak EWMA of an endpoint's latency, the load metric of Linkerd's (and Finagle's) balancer. A
// sample above the estimate replaces it at once, so a slowdown is seen on its first slow response;
// a sample below blends in with a weight that grows with the time since the last update, so it takes
// about `decayMs` of faster responses to trust an endpoint again. Between samples the estimate
// decays toward zero (`valueAt`): an endpoint the balancer stopped choosing because it was slow
// looks cheaper over time and is tried again, instead of being judged forever on stale data.
import type { Clock } from '../../../spiffe/clock.js';

/**
 * The estimate of an endpoint not yet heard from, in ms. Not zero: a zero estimate makes the cost
 * zero whatever the requests outstanding, and a new endpoint would draw every request until its
 * first response came back.
 */
export const DEFAULT_INITIAL_RTT_MS = 30;

export class PeakEwma {
  private estimateMs: number;
  private updatedAtMs: number;

  /** `decayMs`: the time constant of the decay (services config default: 10 s); 0 = only the last sample counts. */
  constructor(
    private readonly decayMs: number,
    private readonly clock: Clock,
    initialRttMs = DEFAULT_INITIAL_RTT_MS,
  ) {
    this.estimateMs = initialRttMs;
    this.updatedAtMs = clock.nowMs();
  }

  /** Records one round trip of `rttMs`. */
  observe(rttMs: number): void {
    const nowMs = this.clock.nowMs();
    const weight = this.decayWeight(nowMs);
    const currentMs = this.estimateMs * weight;
    // new = old * w + sample * (1 - w), where old * w is the estimate decayed to now.
    this.estimateMs = rttMs > currentMs ? rttMs : currentMs + rttMs * (1 - weight);
    this.updatedAtMs = nowMs;
  }

  /** The estimate projected to `nowMs` (decayed since the last sample), without changing it. */
  valueAt(nowMs: number): number {
    return this.estimateMs * this.decayWeight(nowMs);
  }

  /** The estimate now, in ms. */
  get valueMs(): number {
    return this.valueAt(this.clock.nowMs());
  }

  /** The balancer's cost of one more request: the estimate times the requests it would wait behind. */
  cost(outstanding: number): number {
    return this.valueAt(this.clock.nowMs()) * (outstanding + 1);
  }

  /** exp(-elapsed / decay): 1 right after an update, toward 0 as time passes. */
  private decayWeight(nowMs: number): number {
    const elapsedMs = nowMs - this.updatedAtMs;
    // A clock that stepped back is no time at all; a zero decay keeps no memory (and avoids 0 / 0).
    if (elapsedMs <= 0) return 1;
    return this.decayMs > 0 ? Math.exp(-elapsedMs / this.decayMs) : 0;
  }
}
