// One endpoint's ejection state machine, driven by outlier detection (outlier.ts):
//
//   healthy --eject--> ejected --(ejection over, picked)--> probing --success--> healthy
//                         ^                                     |
//                         +------- failure: next duration ------+
//
// While probing, exactly one try (the probe) is out to the endpoint and no other is sent. A probe
// whose outcome never comes (the caller left, an overload answer that says nothing of health) must
// not strand the endpoint: the probe slot reopens. Mutable fields on one object per endpoint, so the
// per-request path allocates nothing. Deciding to eject is the detector's; this only keeps time.

export type EjectionPhase = 'healthy' | 'ejected' | 'probing';

export class EjectionState {
  state: EjectionPhase = 'healthy';
  /** Failures in a row since the last success (or ejection). */
  consecutiveFailures = 0;
  /**
   * Consecutive ejections: the n of the next ejection's n * base. Not reset when a probe succeeds,
   * but forgiven one per `baseMs` the endpoint then stays healthy (see `ejectionsAt`), so an endpoint
   * that flaps (passes a probe, fails again soon) is kept out longer each time, as in Envoy.
   */
  ejections = 0;
  /** When the current ejection ends (ejected, probing); meaningless while healthy. */
  ejectedUntilMs = 0;
  /** When the probe went out (probing). */
  probeSentAtMs = 0;
  /** When the endpoint last came back from an ejection (healthy), for forgiving `ejections`. */
  returnedAtMs = 0;

  /**
   * Whether a try may go to the endpoint now: healthy, or its ejection over and no probe out (or
   * the probe out longer than `probeTimeoutMs`, its answer presumed lost).
   */
  isSelectable(nowMs: number, probeTimeoutMs: number): boolean {
    switch (this.state) {
      case 'healthy':
        return true;
      case 'ejected':
        return nowMs >= this.ejectedUntilMs;
      case 'probing':
        return nowMs - this.probeSentAtMs >= probeTimeoutMs;
    }
  }

  /** The consecutive-ejection count as of `nowMs`, after forgiveness for time healthy since the last return. */
  ejectionsAt(nowMs: number, baseMs: number): number {
    if (this.state !== 'healthy' || this.ejections === 0) return this.ejections;
    // A zero base makes every ejection zero-length anyway; forgive everything rather than divide by 0.
    if (baseMs <= 0) return 0;
    const forgiven = Math.floor((nowMs - this.returnedAtMs) / baseMs);
    return Math.max(0, this.ejections - forgiven);
  }

  /** Ejects a healthy endpoint (or re-ejects after a failed probe) for the next duration; returns when it ends. */
  eject(nowMs: number, baseMs: number, maxMs: number): number {
    this.ejections = this.ejectionsAt(nowMs, baseMs) + 1;
    this.state = 'ejected';
    this.consecutiveFailures = 0;
    this.ejectedUntilMs = nowMs + Math.min(maxMs, this.ejections * baseMs);
    return this.ejectedUntilMs;
  }

  /** A try is going to the endpoint: when its ejection is over this try becomes the probe. True if it did. */
  startProbe(nowMs: number, probeTimeoutMs: number): boolean {
    if (this.state === 'healthy' || !this.isSelectable(nowMs, probeTimeoutMs)) return false;
    this.state = 'probing';
    this.probeSentAtMs = nowMs;
    return true;
  }

  /** The probe succeeded: the endpoint is back. */
  restore(nowMs: number): void {
    this.state = 'healthy';
    this.consecutiveFailures = 0;
    this.returnedAtMs = nowMs;
  }

  /** The probe ended without a verdict: the ejection stays over and the next pick probes again. */
  reopenProbe(): void {
    if (this.state === 'probing') this.state = 'ejected';
  }
}
