// Wakes an owner (the CA rotator, the agent's SVID cache) at the times src/rotation computes, on an
// injected Clock. One pending run per name; it only calls back, and decides nothing: the action asks
// the pure schedule functions what to do and schedules its next wake-up itself.
import { type Clock, MAX_TIMER_DELAY_MS } from '../spiffe/clock.js';
import { SigilError } from '../spiffe/errors.js';

// Delays longer than MAX_TIMER_DELAY_MS are armed in chunks of at most that, re-checking the clock
// at each: a one-year CA would otherwise rotate immediately.

export type ScheduledAction = () => Promise<void> | void;

export interface SchedulerOptions {
  /** Receives what an action threw or rejected with; other schedules keep running. */
  readonly onError: (err: unknown, name: string) => void;
}

interface Pending {
  readonly atMs: number;
  readonly action: ScheduledAction;
  cancelTimer: () => void;
}

export class Scheduler {
  private readonly pending = new Map<string, Pending>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly options: SchedulerOptions,
  ) {}

  /**
   * Runs `action` once at `atMs` (at once if that has passed), replacing any pending schedule of
   * the same name. An action may schedule its own name again. Does nothing after close(), so an
   * action still running at shutdown cannot re-arm itself.
   */
  schedule(name: string, atMs: number, action: ScheduledAction): void {
    if (Number.isNaN(atMs)) {
      throw new SigilError('ERR_INPUT_INVALID', `scheduler: "${name}" needs a time, got NaN`, {
        field: 'atMs',
      });
    }
    if (this.closed) return;
    this.cancel(name);
    const entry: Pending = { atMs, action, cancelTimer: () => {} };
    this.pending.set(name, entry);
    this.arm(name, entry);
  }

  /** Drops the pending run of `name`, if any; a run already started is not interrupted. */
  cancel(name: string): void {
    const entry = this.pending.get(name);
    if (!entry) return;
    entry.cancelTimer();
    this.pending.delete(name);
  }

  /** Cancels every pending run and resolves once the actions already running have settled. */
  async close(): Promise<void> {
    this.closed = true;
    for (const name of [...this.pending.keys()]) this.cancel(name);
    await Promise.all([...this.running]);
  }

  private arm(name: string, entry: Pending): void {
    const delayMs = Math.min(Math.max(0, entry.atMs - this.clock.nowMs()), MAX_TIMER_DELAY_MS);
    entry.cancelTimer = this.clock.setTimer(delayMs, () => this.fire(name, entry));
  }

  private fire(name: string, entry: Pending): void {
    // A replaced or cancelled schedule's timer is already cancelled; this guards a clock that fires anyway.
    if (this.pending.get(name) !== entry) return;
    if (this.clock.nowMs() < entry.atMs) {
      this.arm(name, entry);
      return;
    }
    this.pending.delete(name);
    const run = this.run(name, entry.action);
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  private async run(name: string, action: ScheduledAction): Promise<void> {
    try {
      await action();
    } catch (err) {
      try {
        this.options.onError(err, name);
      } catch {
        // The error reporter itself failed and there is nowhere left to report to; dropping this
        // keeps it from becoming an unhandled rejection that would stop every other schedule.
      }
    }
  }
}
