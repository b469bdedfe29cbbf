import { describe, expect, it } from 'vitest';
import { type Clock, MAX_TIMER_DELAY_MS, ManualClock } from '../spiffe/clock.js';
import { isSigilError } from '../spiffe/errors.js';
import { Scheduler } from './scheduler.js';

const T0 = 1_700_000_000_000;

function setup() {
  const clock = new ManualClock(T0);
  const errors: [unknown, string][] = [];
  const fired: string[] = [];
  const scheduler = new Scheduler(clock, { onError: (err, name) => errors.push([err, name]) });
  const record = (label: string) => () => {
    fired.push(`${label}@${clock.nowMs() - T0}`);
  };
  return { clock, scheduler, errors, fired, record };
}

describe('Scheduler', () => {
  it('runs an action at its time, not before', async () => {
    const { clock, scheduler, fired, record } = setup();
    scheduler.schedule('a', T0 + 1000, record('a'));
    await clock.advance(999);
    expect(fired).toEqual([]);
    await clock.advance(1);
    expect(fired).toEqual(['a@1000']);
    await clock.advance(10_000);
    expect(fired).toEqual(['a@1000']);
  });

  it('runs an action whose time has passed at once', async () => {
    const { clock, scheduler, fired, record } = setup();
    scheduler.schedule('late', T0 - 5000, record('late'));
    await clock.advance(0);
    expect(fired).toEqual(['late@0']);
  });

  it('replaces a pending schedule of the same name', async () => {
    const { clock, scheduler, fired, record } = setup();
    scheduler.schedule('a', T0 + 1000, record('first'));
    scheduler.schedule('a', T0 + 3000, record('second'));
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(5000);
    expect(fired).toEqual(['second@3000']);
  });

  it('lets an action schedule its own name again', async () => {
    const { clock, scheduler, fired } = setup();
    const tick = () => {
      fired.push(`tick@${clock.nowMs() - T0}`);
      if (fired.length < 3) scheduler.schedule('tick', clock.nowMs() + 100, tick);
    };
    scheduler.schedule('tick', T0 + 100, tick);
    await clock.advance(1000);
    expect(fired).toEqual(['tick@100', 'tick@200', 'tick@300']);
  });

  it('cancel drops a pending run and leaves the others', async () => {
    const { clock, scheduler, fired, record } = setup();
    scheduler.schedule('a', T0 + 100, record('a'));
    scheduler.schedule('b', T0 + 200, record('b'));
    scheduler.cancel('a');
    scheduler.cancel('unknown');
    await clock.advance(1000);
    expect(fired).toEqual(['b@200']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('passes errors to onError and keeps running the other schedules', async () => {
    const { clock, scheduler, errors, fired, record } = setup();
    const boom = new Error('boom');
    scheduler.schedule('sync-throw', T0 + 100, () => {
      throw boom;
    });
    scheduler.schedule('async-reject', T0 + 150, async () => {
      throw new Error('later');
    });
    scheduler.schedule('ok', T0 + 200, record('ok'));
    await clock.advance(1000);
    expect(errors.map(([err, name]) => [(err as Error).message, name])).toEqual([
      ['boom', 'sync-throw'],
      ['later', 'async-reject'],
    ]);
    expect(fired).toEqual(['ok@200']);
  });

  it('survives an onError that throws itself', async () => {
    const clock = new ManualClock(T0);
    const fired: number[] = [];
    const scheduler = new Scheduler(clock, {
      onError: () => {
        throw new Error('logger down');
      },
    });
    scheduler.schedule('bad', T0 + 10, () => Promise.reject(new Error('x')));
    scheduler.schedule('good', T0 + 20, () => {
      fired.push(clock.nowMs() - T0);
    });
    await clock.advance(100);
    await scheduler.close();
    expect(fired).toEqual([20]);
  });

  it('arms long delays in chunks no longer than a Node timer can hold', async () => {
    const delays: number[] = [];
    const manual = new ManualClock(T0);
    const spy: Clock = {
      nowMs: () => manual.nowMs(),
      setTimer: (delayMs, fire) => {
        delays.push(delayMs);
        return manual.setTimer(delayMs, fire);
      },
    };
    const fired: number[] = [];
    const scheduler = new Scheduler(spy, { onError: () => {} });
    const yearMs = 365 * 86_400_000;
    scheduler.schedule('ca', T0 + yearMs, () => {
      fired.push(manual.nowMs() - T0);
    });
    await manual.advance(MAX_TIMER_DELAY_MS);
    expect(fired).toEqual([]);
    await manual.advance(yearMs - MAX_TIMER_DELAY_MS);
    expect(fired).toEqual([yearMs]);
    expect(Math.max(...delays)).toBe(MAX_TIMER_DELAY_MS);
    // 365 days in chunks of ~24.8 days: 14 full chunks, then the remainder.
    expect(delays.length).toBe(Math.ceil(yearMs / MAX_TIMER_DELAY_MS));
  });

  it('re-arms when a timer fires before the time is due', async () => {
    const manual = new ManualClock(T0);
    // A clock whose timers fire early (a real one may, after a suspend or a coarse timer).
    const early: Clock = {
      nowMs: () => manual.nowMs(),
      setTimer: (delayMs, fire) => manual.setTimer(Math.max(1, Math.floor(delayMs / 2)), fire),
    };
    const fired: number[] = [];
    const scheduler = new Scheduler(early, { onError: () => {} });
    scheduler.schedule('a', T0 + 1000, () => {
      fired.push(manual.nowMs() - T0);
    });
    await manual.advance(999);
    expect(fired).toEqual([]);
    await manual.advance(1);
    expect(fired).toEqual([1000]);
  });

  it('close cancels pending runs, waits for running ones, and ignores later schedules', async () => {
    const { clock, scheduler, fired, record } = setup();
    let release!: () => void;
    let finished = false;
    scheduler.schedule('slow', T0 + 10, async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      finished = true;
      scheduler.schedule('slow', clock.nowMs() + 10, record('re-armed'));
    });
    scheduler.schedule('pending', T0 + 1000, record('pending'));
    await clock.advance(10);
    const closed = scheduler.close();
    expect(clock.pendingTimers).toBe(0);
    release();
    await closed;
    expect(finished).toBe(true);
    scheduler.schedule('after', clock.nowMs() + 1, record('after'));
    await clock.advance(10_000);
    expect(fired).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('refuses a NaN time', () => {
    const { scheduler } = setup();
    let err: unknown;
    try {
      scheduler.schedule('x', Number.NaN, () => {});
    } catch (e) {
      err = e;
    }
    expect(isSigilError(err, 'ERR_INPUT_INVALID')).toBe(true);
  });
});
