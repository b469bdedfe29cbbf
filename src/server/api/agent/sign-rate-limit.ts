// A token bucket per agent SPIFFE ID for signing (SignX509Svids, MintJwtSvid, RenewAgentSvid), on
// the injected Clock. A call is admitted while the agent's bucket holds a token and is charged one
// token per SVID, possibly overdrawing: a starting agent's 500-CSR batch goes through even with a
// small burst, and the agent then waits until the bucket refills, so the sustained rate holds.
import type { Logger } from 'pino';
import type { Clock } from '../../../spiffe/clock.js';
import { SigilError } from '../../../spiffe/errors.js';

/** Buckets are swept of agents back at a full bucket once the map doubles past this size. */
const MIN_SWEEP_SIZE = 1024;

interface Bucket {
  tokens: number;
  atMs: number;
  /** Whether this refusal episode was logged: one log line per episode, not per refused call. */
  refusalLogged: boolean;
}

export class SignRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private sweepAtSize = MIN_SWEEP_SIZE;

  constructor(
    private readonly options: {
      readonly ratePerSecond: number;
      readonly burst: number;
      readonly clock: Clock;
      readonly logger: Logger;
    },
  ) {}

  /** Charges `cost` SVIDs to `agentId`, or throws ERR_RESOURCE_EXHAUSTED saying when to retry. */
  take(agentId: string, cost: number, rpc: string): void {
    const { ratePerSecond, burst, clock } = this.options;
    const nowMs = clock.nowMs();
    const bucket = this.refilled(agentId, nowMs);
    if (bucket.tokens < 1) {
      const retryAfterS = Math.ceil(((1 - bucket.tokens) / ratePerSecond) * 10) / 10;
      if (!bucket.refusalLogged) {
        bucket.refusalLogged = true;
        this.options.logger.warn({ agentId, rpc, retryAfterS }, 'Agent signing rate limited');
      }
      throw new SigilError(
        'ERR_RESOURCE_EXHAUSTED',
        `agent ${agentId} is signing too fast: at most ${ratePerSecond} SVIDs per second (burst ${burst}); retry in ${retryAfterS}s`,
        { reason: 'sign-rate' },
      );
    }
    bucket.tokens -= cost;
    bucket.refusalLogged = false;
    if (this.buckets.size > this.sweepAtSize) this.sweep(nowMs);
  }

  private refilled(agentId: string, nowMs: number): Bucket {
    const { ratePerSecond, burst } = this.options;
    let bucket = this.buckets.get(agentId);
    if (bucket === undefined) {
      bucket = { tokens: burst, atMs: nowMs, refusalLogged: false };
      this.buckets.set(agentId, bucket);
    }
    const elapsedMs = Math.max(0, nowMs - bucket.atMs);
    bucket.tokens = Math.min(burst, bucket.tokens + (elapsedMs * ratePerSecond) / 1000);
    bucket.atMs = nowMs;
    return bucket;
  }

  /** Forgets agents whose bucket is full again: they are indistinguishable from new ones. */
  private sweep(nowMs: number): void {
    for (const [agentId, bucket] of this.buckets) {
      const tokens = bucket.tokens + ((nowMs - bucket.atMs) * this.options.ratePerSecond) / 1000;
      if (tokens >= this.options.burst) this.buckets.delete(agentId);
    }
    this.sweepAtSize = Math.max(MIN_SWEEP_SIZE, 2 * this.buckets.size);
  }
}
