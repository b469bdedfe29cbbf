// When the agent renews its own SVID and how long it waits after a failed attempt: pure functions over
// times, like src/rotation's renewAtMs, which they use. The identity lifecycle draws the jitter once
// per SVID and keeps the result; nothing here reads a clock or arms a timer.
import { renewAtMs } from '../../rotation/index.js';
import { Backoff } from '../../spiffe/backoff.js';

/** First retry after a failed renewal: 1 s, doubling (jittered) per consecutive failure. */
const RENEW_RETRY_INITIAL_MS = 1_000;
/** Largest retry delay, 5 minutes: a server back from an outage is used within that. */
const RENEW_RETRY_MAX_MS = 5 * 60_000;
/**
 * A retry never waits more than this fraction of the SVID's remaining life, so a long outage still
 * leaves several attempts before expiry (with 1 h left, at most 6 minutes between tries).
 */
const RETRY_MAX_FRACTION_OF_REMAINING = 0.1;
/** After a taint, renew within this much (jittered): agents tainted together do not renew together. */
export const TAINT_RENEW_SPREAD_MS = 5_000;

export interface AgentSvidTimes {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /**
   * When the agent received the SVID, or -Infinity for one saved by an earlier run. Servers backdate
   * notBefore for clock skew (sigil-server by 10 s); counted from notBefore, the renewal point of an
   * SVID shorter than twice the backdate lies in the past, so every renewal would be due at once: a
   * tight loop against the server. Counting from receipt avoids it.
   */
  readonly receivedAtMs: number;
}

/**
 * When to renew: half the life counted from max(notBefore, received), ± 10% of that (rotation's
 * renewAtMs). Call once per SVID with one draw of `random`, and keep the result.
 */
export function agentRenewAtMs(svid: AgentSvidTimes, random: () => number): number {
  const startMs = Math.max(svid.notBeforeMs, Math.min(svid.receivedAtMs, svid.notAfterMs));
  return renewAtMs({ notBeforeMs: startMs, notAfterMs: svid.notAfterMs }, {}, random);
}

/**
 * The wait before the next renewal attempt after `failures` (≥ 1) consecutive failures: exponential
 * backoff from 1 s to 5 min with jitter; while the SVID is valid, never more than a tenth of the life
 * left (but at least 1 s).
 */
export function renewRetryDelayMs(
  failures: number,
  nowMs: number,
  notAfterMs: number,
  random: () => number,
): number {
  const backoff = Backoff.create({ initialMs: RENEW_RETRY_INITIAL_MS, maxMs: RENEW_RETRY_MAX_MS });
  const delayMs = backoff.afterFailures(Math.max(0, failures - 1)).delayMs(random);
  const remainingMs = notAfterMs - nowMs;
  // Past expiry there is no life left to spread the tries over: plain backoff, up to 5 minutes.
  const capMs =
    remainingMs > 0
      ? Math.max(RENEW_RETRY_INITIAL_MS, remainingMs * RETRY_MAX_FRACTION_OF_REMAINING)
      : Number.POSITIVE_INFINITY;
  return Math.round(Math.min(delayMs, capMs));
}

/** A small jittered delay before renewing an SVID whose signing authority was tainted. */
export function taintRenewDelayMs(random: () => number): number {
  return Math.round(random() * TAINT_RENEW_SPREAD_MS);
}
