// A service's retry budget (Finagle's and Linkerd's model): retries may add at most `ratio` to the
// requests of the last `windowMs`, plus a floor of `minPerSecond` so a trickle of traffic can still
// retry. It bounds the extra load retries put on an upstream that is failing for everyone, where
// per-request attempt limits would multiply it. Counted over a sliding window of buckets advanced
// lazily from the clock (sliding-window.ts): no timers. The budget belongs to the service, shared by
// its routes and tries, so it survives reloads that leave its options alone.
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { SlidingWindow } from './sliding-window.js';

export interface RetryBudgetOptions {
  /** Retries allowed per request in the window, e.g. 0.2 = 20% extra load. Default 0.2. */
  readonly ratio: number;
  /** Retries per second allowed whatever the traffic. Default 10. */
  readonly minPerSecond: number;
  /** How far back requests and retries count, in ms. Default 10 s. */
  readonly windowMs: number;
}

export class RetryBudget {
  private readonly window: SlidingWindow;
  private readonly ratio: number;
  /** The floor over the whole window: minPerSecond * windowMs / 1000. */
  private readonly floor: number;
  private exhausted = 0;

  constructor(
    options: RetryBudgetOptions,
    private readonly clock: Clock,
  ) {
    checkOption('ratio', options.ratio, 0);
    checkOption('minPerSecond', options.minPerSecond, 0);
    checkOption('windowMs', options.windowMs, 1);
    this.ratio = options.ratio;
    this.floor = (options.minPerSecond * options.windowMs) / 1_000;
    this.window = new SlidingWindow(options.windowMs);
  }

  /** Counts one request (its first try); retries are not deposits. */
  deposit(): void {
    this.window.advance(this.clock.nowMs());
    this.window.add(1, 0);
  }

  /** Takes one retry from the budget if there is room; false (and counted) when it is spent. */
  tryWithdraw(): boolean {
    const window = this.window;
    window.advance(this.clock.nowMs());
    if (window.second < this.ratio * window.first + this.floor) {
      window.add(0, 1);
      return true;
    }
    this.exhausted++;
    return false;
  }

  /** Withdrawals refused since the budget was made. */
  get exhaustedCount(): number {
    return this.exhausted;
  }
}

function checkOption(name: keyof RetryBudgetOptions, value: number, min: number): void {
  if (!Number.isFinite(value) || value < min) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `retry budget: ${name} must be a finite number >= ${min} (got ${value})`,
      {
        field: name,
      },
    );
  }
}
