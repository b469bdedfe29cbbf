import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { RequestBucket } from './token-bucket.js';

describe('RequestBucket', () => {
  it('admits a full burst at once, then refuses with the wait until the next token', () => {
    const clock = new ManualClock();
    const bucket = new RequestBucket(clock, { requestsPerSecond: 50, burst: 3 });
    expect([bucket.take(clock.nowMs()), bucket.take(clock.nowMs()), bucket.take(clock.nowMs())]).toEqual([
      0, 0, 0,
    ]);
    // 50/s: one token every 20 ms.
    expect(bucket.take(clock.nowMs())).toBe(20);
    expect(bucket.take(clock.nowMs())).toBe(20);
  });

  it('refills lazily at the rate, never above the burst', async () => {
    const clock = new ManualClock();
    const bucket = new RequestBucket(clock, { requestsPerSecond: 10, burst: 2 });
    bucket.take(clock.nowMs());
    bucket.take(clock.nowMs());
    await clock.advance(50);
    // Half a token: 50 ms more.
    expect(bucket.take(clock.nowMs())).toBe(50);
    await clock.advance(50);
    expect(bucket.take(clock.nowMs())).toBe(0);
    expect(bucket.take(clock.nowMs())).toBe(100);
    await clock.advance(60_000);
    expect(bucket.isFull(clock.nowMs())).toBe(true);
    expect([bucket.take(clock.nowMs()), bucket.take(clock.nowMs()), bucket.take(clock.nowMs())]).toEqual([
      0, 0, 100,
    ]);
  });

  it('waitMs tells the wait without taking, and a slow rate waits whole seconds', async () => {
    const clock = new ManualClock();
    const bucket = new RequestBucket(clock, { requestsPerSecond: 0.1, burst: 1 });
    expect(bucket.waitMs(clock.nowMs())).toBe(0);
    expect(bucket.waitMs(clock.nowMs())).toBe(0);
    expect(bucket.take(clock.nowMs())).toBe(0);
    expect(bucket.waitMs(clock.nowMs())).toBe(10_000);
    await clock.advance(2_500);
    expect(bucket.take(clock.nowMs())).toBe(7_500);
    expect(bucket.isFull(clock.nowMs())).toBe(false);
  });

  it('holds a sustained rate over time: admitted = burst + rate x seconds', async () => {
    const clock = new ManualClock();
    const bucket = new RequestBucket(clock, { requestsPerSecond: 50, burst: 10 });
    let admitted = 0;
    // 200 requests a second (one every 5 ms) for 3 seconds.
    for (let i = 0; i < 600; i++) {
      if (bucket.take(clock.nowMs()) === 0) admitted++;
      await clock.advance(5);
    }
    expect(admitted).toBe(10 + 150 - 1);
  });
});
