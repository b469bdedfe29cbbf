// Whether CA rotation is keeping up, and when to retry after a failed step. A failed step (store
// down, disk full, upstream CA unreachable) is retried with a jittered exponential backoff, reset
// on success; readiness turns false only when failures persist or the active authority is already
// overdue for replacement, so one blip does not take the server out of a load balancer while a
// CA about to expire unnoticed does. Like SPIRE's rotator health check, but with a retry.
import { Backoff } from '../../spiffe/backoff.js';

/** First retry after 1s, doubling to at most 5 minutes: fast for blips, gentle on a down store. */
export const ROTATION_RETRY_INITIAL_MS = 1_000;
export const ROTATION_RETRY_MAX_MS = 5 * 60_000;
/** Three failures in a row (about 4-7 s of retries) is no longer a blip: report not ready. */
export const UNREADY_AFTER_FAILURES = 3;

/** Where rotation outcomes go (metrics); every call is synchronous and must not throw. */
export interface CaObserver {
  /** An authority of `kind` now signs, valid until `notAfterMs`. */
  activeAuthority(kind: 'x509' | 'jwt', notAfterMs: number): void;
  rotationFailed(consecutiveFailures: number): void;
  rotationSucceeded(atMs: number): void;
}

export interface RotationStatus {
  readonly consecutiveFailures: number;
  readonly lastSuccessAtMs: number | null;
  readonly lastFailureAtMs: number | null;
}

export class RotationHealth {
  private failures = 0;
  private lastSuccessAtMs: number | null = null;
  private lastFailureAtMs: number | null = null;
  private readonly backoff = Backoff.create({
    initialMs: ROTATION_RETRY_INITIAL_MS,
    maxMs: ROTATION_RETRY_MAX_MS,
  });

  get status(): RotationStatus {
    return {
      consecutiveFailures: this.failures,
      lastSuccessAtMs: this.lastSuccessAtMs,
      lastFailureAtMs: this.lastFailureAtMs,
    };
  }

  get isFailing(): boolean {
    return this.failures > 0;
  }

  succeeded(nowMs: number): void {
    this.failures = 0;
    this.lastSuccessAtMs = nowMs;
  }

  /** Records a failure; returns how many in a row. */
  failed(nowMs: number): number {
    this.failures += 1;
    this.lastFailureAtMs = nowMs;
    return this.failures;
  }

  /** The delay before the next attempt after the current run of failures. */
  retryDelayMs(random: () => number): number {
    return this.backoff.afterFailures(this.failures - 1).delayMs(random);
  }

  /**
   * Ready unless the last attempt failed and either it failed UNREADY_AFTER_FAILURES times in a
   * row or `overdue` (an active authority past the mark where its successor should sign).
   */
  isReady(overdue: boolean): boolean {
    return !(this.failures > 0 && (this.failures >= UNREADY_AFTER_FAILURES || overdue));
  }
}
