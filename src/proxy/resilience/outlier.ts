// Outlier detection across one service's endpoints (Envoy's consecutive-5xx and failure-percentage
// detectors, evaluated on each result rather than on an interval timer): an endpoint is ejected after
// N failures in a row, or when its share of failures over a sliding window exceeds a rate once it
// has seen enough tries. The n-th consecutive ejection lasts min(max, n * base); when it is over, the
// next try to the endpoint is its single probe, whose success returns it and whose failure ejects it
// again at once for longer (circuit.ts). Overload answers (429, RESOURCE_EXHAUSTED) say the endpoint
// is busy, not broken: they count for nothing here. Never more than floor(share * endpoints) are out
// at once, so detection cannot empty a service that is failing as a whole: that is the service's
// circuit breaker's call (outbound/service.ts runs one of these over the service as a whole, share 1).
//
// What it deliberately does not do: results of tries sent before an ejection that arrive while the
// endpoint is ejected are dropped; one arriving while a probe is out cannot be told from the probe's
// and is taken as its answer (rare, and either verdict is fresh news about the endpoint).
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { EjectionState } from './circuit.js';
import { SlidingWindow } from './sliding-window.js';

export interface OutlierOptions {
  /** Failures in a row that eject an endpoint; 0 = off. Default 5. */
  readonly consecutiveFailures: number;
  /** Share of failures over `windowMs` above which an endpoint is ejected, in [0, 1]; 0 = off. Default 0.5. */
  readonly failureRate: number;
  /** Tries an endpoint must have had in the window before `failureRate` applies. Default 20. */
  readonly minRequests: number;
  /** The failure-rate window, in ms. Default 30 s. */
  readonly windowMs: number;
  /** The first ejection's length, in ms; the n-th lasts n times it. Default 30 s. */
  readonly baseEjectionMs: number;
  /** The longest ejection, in ms. Default 300 s. */
  readonly maxEjectionMs: number;
  /** The share of endpoints that may be ejected at once, in [0, 1]; one always may. Default 0.5. */
  readonly maxEjectedShare: number;
  /**
   * How long a probe may stay unanswered before another try may probe, in ms: its answer may never
   * come (the caller left before it). Defaults to `baseEjectionMs`.
   */
  readonly probeTimeoutMs?: number;
}

/** How a try went for outlier detection: overload = 429 / RESOURCE_EXHAUSTED, not a failure, resets nothing. */
export type TryOutcome = 'success' | 'failure' | 'overload';

export interface OutlierEvents<E> {
  onEject?(endpoint: E, untilMs: number, reason: 'consecutive' | 'rate'): void;
  /** A probe succeeded: the endpoint takes traffic again. */
  onReturn?(endpoint: E): void;
  /** A probe failed: the endpoint is ejected again, until `untilMs`. */
  onProbeFailed?(endpoint: E, untilMs: number): void;
}

export interface OutlierView {
  state: 'healthy' | 'ejected' | 'probing';
  /** When the current ejection ends; null while healthy. */
  ejectedUntilMs: number | null;
  /** Consecutive ejections that count toward the next one's length (forgiven over healthy time). */
  ejections: number;
}

/** One endpoint's record: its ejection state, failure-rate window, and the `setEndpoints` call that last listed it. */
class EndpointHealth extends EjectionState {
  constructor(
    public generation: number,
    readonly window: SlidingWindow | null,
  ) {
    super();
  }
}

export class OutlierDetector<E extends object> {
  /** Keyed by the endpoint object itself: a hash on identity, no string keys; dropped endpoints are collectable. */
  private readonly health = new WeakMap<E, EndpointHealth>();
  private endpoints: readonly E[] = [];
  private generation = 0;
  private ejected = 0;
  private maxEjected = 0;
  private readonly consecutiveLimit: number;
  private readonly failureRate: number;
  private readonly minRequests: number;
  private readonly windowMs: number;
  private readonly baseEjectionMs: number;
  private readonly maxEjectionMs: number;
  private readonly maxEjectedShare: number;
  private readonly probeTimeoutMs: number;

  constructor(
    options: OutlierOptions,
    private readonly clock: Clock,
    private readonly events: OutlierEvents<E> = {},
  ) {
    checkOption('consecutiveFailures', options.consecutiveFailures, 0, Number.MAX_SAFE_INTEGER);
    checkOption('failureRate', options.failureRate, 0, 1);
    checkOption('minRequests', options.minRequests, 0, Number.MAX_SAFE_INTEGER);
    checkOption('windowMs', options.windowMs, 1, Number.MAX_SAFE_INTEGER);
    checkOption('baseEjectionMs', options.baseEjectionMs, 0, Number.MAX_SAFE_INTEGER);
    checkOption('maxEjectionMs', options.maxEjectionMs, 0, Number.MAX_SAFE_INTEGER);
    checkOption('maxEjectedShare', options.maxEjectedShare, 0, 1);
    const probeTimeoutMs = options.probeTimeoutMs ?? options.baseEjectionMs;
    checkOption('probeTimeoutMs', probeTimeoutMs, 0, Number.MAX_SAFE_INTEGER);
    this.consecutiveLimit = options.consecutiveFailures;
    this.failureRate = options.failureRate;
    this.minRequests = options.minRequests;
    this.windowMs = options.windowMs;
    this.baseEjectionMs = options.baseEjectionMs;
    this.maxEjectionMs = options.maxEjectionMs;
    this.maxEjectedShare = options.maxEjectedShare;
    this.probeTimeoutMs = probeTimeoutMs;
  }

  /** Endpoints ejected or probing now. */
  get ejectedCount(): number {
    return this.ejected;
  }

  /**
   * Replaces the tracked set (distinct endpoints). Endpoints that stay keep their state, ejections
   * included; those that left lose it, so one that comes back later starts healthy. O(endpoints).
   */
  setEndpoints(endpoints: readonly E[]): void {
    const generation = ++this.generation;
    let ejected = 0;
    for (const endpoint of endpoints) {
      let health = this.health.get(endpoint);
      if (health === undefined) {
        health = new EndpointHealth(
          generation,
          this.failureRate > 0 ? new SlidingWindow(this.windowMs) : null,
        );
        this.health.set(endpoint, health);
      }
      health.generation = generation;
      if (health.state !== 'healthy') ejected++;
    }
    for (const endpoint of this.endpoints) {
      if (this.health.get(endpoint)?.generation !== generation) this.health.delete(endpoint);
    }
    // A copy: the caller may refill its array, and the next call must know what this one tracked.
    this.endpoints = endpoints.slice();
    this.ejected = ejected;
    this.maxEjected = Math.floor(this.maxEjectedShare * endpoints.length);
  }

  /** Healthy, or its ejection over and no probe out. An endpoint not tracked is selectable. */
  isSelectable(endpoint: E): boolean {
    const health = this.health.get(endpoint);
    return health === undefined || health.isSelectable(this.clock.nowMs(), this.probeTimeoutMs);
  }

  /** A try goes to `endpoint`: if its ejection is over, this try is the probe and no other goes until it answers. */
  onPick(endpoint: E): void {
    this.health.get(endpoint)?.startProbe(this.clock.nowMs(), this.probeTimeoutMs);
  }

  /** A try to `endpoint` ended with `outcome`. O(1). */
  onResult(endpoint: E, outcome: TryOutcome): void {
    const health = this.health.get(endpoint);
    if (health === undefined || outcome === 'overload') {
      // Overload says nothing of health, but a probe that got it must not hold the probe slot.
      health?.reopenProbe();
      return;
    }
    if (health.state === 'healthy') this.onHealthyResult(endpoint, health, outcome === 'failure');
    else if (health.state === 'probing') this.onProbeResult(endpoint, health, outcome === 'failure');
    // Ejected: the answer of a try sent before the ejection; it is already accounted for.
  }

  /** A try ended without an outcome (the caller left): if it was the probe, the next pick probes again. */
  onAbandon(endpoint: E): void {
    this.health.get(endpoint)?.reopenProbe();
  }

  stateOf(endpoint: E): OutlierView {
    const health = this.health.get(endpoint);
    if (health === undefined) return { state: 'healthy', ejectedUntilMs: null, ejections: 0 };
    return {
      state: health.state,
      ejectedUntilMs: health.state === 'healthy' ? null : health.ejectedUntilMs,
      ejections: health.ejectionsAt(this.clock.nowMs(), this.baseEjectionMs),
    };
  }

  private onHealthyResult(endpoint: E, health: EndpointHealth, isFailure: boolean): void {
    const window = health.window;
    if (window !== null) {
      window.advance(this.clock.nowMs());
      window.add(1, isFailure ? 1 : 0);
    }
    if (!isFailure) {
      health.consecutiveFailures = 0;
      return;
    }
    health.consecutiveFailures++;
    const reason =
      this.consecutiveLimit > 0 && health.consecutiveFailures >= this.consecutiveLimit
        ? 'consecutive'
        : window !== null &&
            window.first >= this.minRequests &&
            window.second > this.failureRate * window.first
          ? 'rate'
          : null;
    // At the cap the endpoint stays in, its count kept: the next failure ejects it once there is room.
    if (reason === null || this.ejected >= this.maxEjected) return;
    this.ejected++;
    const untilMs = health.eject(this.clock.nowMs(), this.baseEjectionMs, this.maxEjectionMs);
    // What led to this ejection must not count again after the endpoint returns.
    window?.clear();
    this.events.onEject?.(endpoint, untilMs, reason);
  }

  private onProbeResult(endpoint: E, health: EndpointHealth, isFailure: boolean): void {
    const nowMs = this.clock.nowMs();
    if (isFailure) {
      const untilMs = health.eject(nowMs, this.baseEjectionMs, this.maxEjectionMs);
      this.events.onProbeFailed?.(endpoint, untilMs);
      return;
    }
    health.restore(nowMs);
    this.ejected--;
    this.events.onReturn?.(endpoint);
  }
}

function checkOption(name: keyof OutlierOptions, value: number, min: number, max: number): void {
  if (!(value >= min && value <= max)) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `outlier detection: ${name} must be in [${min}, ${max}] (got ${value})`,
      {
        field: name,
      },
    );
  }
}
