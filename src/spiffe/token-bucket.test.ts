import { describe, expect, it } from 'vitest';
import { type Clock, ManualClock } from './clock.js';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('starts full, refills at the rate on the clock, and never above capacity', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock, ratePerSecond: 10, capacity: 5 });
    expect(bucket.tokens).toBe(5);
    bucket.spend(5);
    expect(bucket.tokens).toBe(0);
    await clock.advance(200);
    expect(bucket.tokens).toBe(2);
    await clock.advance(60_000);
    expect(bucket.tokens).toBe(5);
  });

  it('may be overdrawn, and the debt is repaid by the refill', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock, ratePerSecond: 100, capacity: 10 });
    bucket.spend(500);
    expect(bucket.tokens).toBe(-490);
    await clock.advance(4_900);
    expect(bucket.tokens).toBe(0);
  });

  it('adds nothing when the clock steps back, and refills from there', () => {
    let nowMs = 1_000_000;
    const clock: Clock = { nowMs: () => nowMs, setTimer: () => () => {} };
    const bucket = new TokenBucket({ clock, ratePerSecond: 1, capacity: 3 });
    bucket.spend(3);
    nowMs -= 60_000;
    expect(bucket.tokens).toBe(0);
    nowMs += 2_000;
    expect(bucket.tokens).toBe(2);
  });
});

describe('TokenBucket at a given time', () => {
  it('reads and spends at the time given, as the getter does at the clock time', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock, ratePerSecond: 10, capacity: 5 });
    const t0 = clock.nowMs();
    bucket.spend(5, t0);
    expect(bucket.tokensAt(t0 + 300)).toBe(3);
    bucket.spend(1, t0 + 300);
    expect(bucket.tokensAt(t0 + 300)).toBe(2);
    await clock.advance(400);
    expect(bucket.tokens).toBe(3);
  });
});
