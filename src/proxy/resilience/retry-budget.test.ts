import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { isSigilError } from '../../spiffe/errors.js';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget.js';

const DEFAULTS: RetryBudgetOptions = { ratio: 0.2, minPerSecond: 10, windowMs: 10_000 };

/** Runs `requests` requests, one every `everyMs`, each failing and retrying up to `maxRetries` times. */
async function failingStream(budget: RetryBudget, clock: ManualClock, requests: number, everyMs: number) {
  let retries = 0;
  for (let i = 0; i < requests; i++) {
    budget.deposit();
    for (let r = 0; r < 2; r++) {
      // A refused retry ends the request: the failure goes to the caller.
      if (!budget.tryWithdraw()) break;
      retries++;
    }
    await clock.advance(everyMs);
  }
  return retries;
}

function withdrawAll(budget: RetryBudget): number {
  let n = 0;
  while (budget.tryWithdraw()) n++;
  return n;
}

describe('RetryBudget', () => {
  it('holds retries to ratio * requests + the floor over one window of all-failing traffic', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget(DEFAULTS, clock);
    // 1000 requests in 10 s, all inside one window: 0.2 * 1000 + 10/s * 10 s = 300 retries at most.
    const retries = await failingStream(budget, clock, 1_000, 10);
    expect(retries).toBeLessThanOrEqual(300);
    // ...and the budget is used, not refused early: a stricter rule would also pass the bound above.
    expect(retries).toBeGreaterThanOrEqual(295);
    // Every request past the point the budget ran dry was refused once.
    expect(budget.exhaustedCount).toBeGreaterThan(800);
    expect(budget.exhaustedCount).toBeLessThanOrEqual(1_000);
  });

  it('keeps to the ratio over a long steady stream, window after window', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget(DEFAULTS, clock);
    // 100 s at 100 requests/s: each window allows 0.2 * 1000 + 100, so ~3000 in all.
    const retries = await failingStream(budget, clock, 10_000, 10);
    expect(retries).toBeLessThanOrEqual(0.2 * 10_000 + 10 * 100 + 30);
    expect(retries).toBeGreaterThanOrEqual(0.2 * 10_000 + 10 * 90);
  });

  it('lets a trickle of traffic retry on the floor alone', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowMs: 10_000 }, clock);
    // One request every 2 s with two retries each is 1 retry/s: within the floor of 10 per window.
    expect(await failingStream(budget, clock, 50, 2_000)).toBe(100);
    expect(budget.exhaustedCount).toBe(0);
  });

  it('allows no retry with a zero ratio and floor', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0, windowMs: 10_000 }, clock);
    expect(await failingStream(budget, clock, 100, 10)).toBe(0);
  });

  it('frees what old buckets held once they leave the window', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1, windowMs: 10_000 }, clock);
    expect(withdrawAll(budget)).toBe(10);
    await clock.advance(5_000);
    expect(budget.tryWithdraw()).toBe(false);
    // The bucket of the first ten is still inside the window at 9.999 s...
    await clock.advance(4_999);
    expect(budget.tryWithdraw()).toBe(false);
    // ...and out of it at 10 s.
    await clock.advance(1);
    expect(withdrawAll(budget)).toBe(10);
  });

  it('expires a spread of retries bucket by bucket', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1, windowMs: 10_000 }, clock);
    for (let second = 0; second < 10; second++) {
      expect(budget.tryWithdraw()).toBe(true);
      await clock.advance(1_000);
    }
    // Ten spent, one per bucket: each second frees exactly one.
    for (let second = 0; second < 5; second++) {
      expect(withdrawAll(budget)).toBe(1);
      await clock.advance(1_000);
    }
  });

  it('counts requests for the ratio only while they are in the window', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, windowMs: 10_000 }, clock);
    for (let i = 0; i < 100; i++) budget.deposit();
    expect(withdrawAll(budget)).toBe(50);
    await clock.advance(10_000);
    for (let i = 0; i < 10; i++) budget.deposit();
    expect(withdrawAll(budget)).toBe(5);
  });

  it('starts afresh after an idle gap far longer than the window', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowMs: 10_000 }, clock);
    for (let i = 0; i < 100; i++) budget.deposit();
    expect(withdrawAll(budget)).toBe(30);
    await clock.advance(3_600_000 + 123);
    // The old requests no longer earn retries either: only the floor remains.
    expect(withdrawAll(budget)).toBe(10);
    expect(budget.exhaustedCount).toBe(2);
  });

  it('ignores a clock that steps back rather than corrupting its counts', async () => {
    const clock = new ManualClock();
    let offsetMs = 0;
    const steppingClock = { nowMs: () => clock.nowMs() + offsetMs, setTimer: clock.setTimer.bind(clock) };
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1, windowMs: 10_000 }, steppingClock);
    expect(withdrawAll(budget)).toBe(10);
    offsetMs = -60_000;
    expect(budget.tryWithdraw()).toBe(false);
    offsetMs = 10_000;
    expect(withdrawAll(budget)).toBe(10);
  });

  it.each([
    [{ ratio: -0.1 }, 'ratio'],
    [{ ratio: Number.NaN }, 'ratio'],
    [{ minPerSecond: -1 }, 'minPerSecond'],
    [{ windowMs: 0 }, 'windowMs'],
    [{ windowMs: Number.POSITIVE_INFINITY }, 'windowMs'],
  ])('refuses options %j', (override, field) => {
    const make = () => new RetryBudget({ ...DEFAULTS, ...override }, new ManualClock());
    expect(make).toThrow(expect.objectContaining({ code: 'ERR_INPUT_INVALID', field }));
    try {
      make();
    } catch (err) {
      expect(isSigilError(err, 'ERR_INPUT_INVALID') && err.message).toMatch(
        new RegExp(`^retry budget: ${field} must be`),
      );
    }
  });
});
