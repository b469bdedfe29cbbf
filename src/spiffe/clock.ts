// Time is injected: logic takes a Clock so schedules run in milliseconds under test. Only this file
// reads the wall clock or arms real timers (CI greps for Date.now/setTimeout elsewhere in src/).

/**
 * The longest delay a timer can take: Node fires a timer longer than 2^31-1 ms (~24.8 days) at once.
 * Longer schedules are armed in chunks (rotation's Scheduler); configured timeouts are capped by it.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export interface Clock {
  nowMs(): number;
  /** Calls `fire` once after `delayMs`; returns a function that cancels it. Real timers are unref'd. */
  setTimer(delayMs: number, fire: () => void): () => void;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  setTimer(delayMs, fire) {
    const timer = setTimeout(fire, Math.max(0, delayMs));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

interface PendingTimer {
  atMs: number;
  seq: number;
  fire: () => void;
}

/** A clock that moves only when told; `advance` fires due timers in order, settling awaited work between. */
export class ManualClock implements Clock {
  private current: number;
  private timers: PendingTimer[] = [];
  private seq = 0;

  constructor(startMs = 1_700_000_000_000) {
    this.current = startMs;
  }

  nowMs(): number {
    return this.current;
  }

  setTimer(delayMs: number, fire: () => void): () => void {
    const timer: PendingTimer = { atMs: this.current + Math.max(0, delayMs), seq: this.seq++, fire };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      await settle();
      const due = this.timers
        .filter((t) => t.atMs <= target)
        .sort((a, b) => a.atMs - b.atMs || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.atMs);
      due.fire();
    }
    this.current = target;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Keeps the process running until the returned function is called. Clock timers are unref'd, so a
 * daemon that is only waiting on one (an agent retrying its first attestation) would otherwise exit.
 */
export function holdProcessOpen(): () => void {
  const timer = setInterval(() => {}, MAX_TIMER_DELAY_MS);
  return () => clearInterval(timer);
}
