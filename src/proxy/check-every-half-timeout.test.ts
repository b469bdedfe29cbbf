import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../spiffe/clock.js';
import { checkEveryHalfTimeout } from './check-every-half-timeout.js';

describe('checkEveryHalfTimeout', () => {
  it('checks every half timeout until the check says it is done', async () => {
    const clock = new ManualClock();
    const at: number[] = [];
    checkEveryHalfTimeout(clock, 10_000, new EventEmitter(), () => {
      at.push(clock.nowMs());
      return at.length === 3;
    });
    const startMs = clock.nowMs();
    await clock.advance(60_000);
    expect(at.map((ms) => ms - startMs)).toEqual([5_000, 10_000, 15_000]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('checks no more often than every 250 ms, however short the timeout', async () => {
    const clock = new ManualClock();
    let checks = 0;
    checkEveryHalfTimeout(clock, 100, new EventEmitter(), () => ++checks === 0);
    await clock.advance(1_000);
    expect(checks).toBe(4);
  });

  it('stops when the connection closes', async () => {
    const clock = new ManualClock();
    const connection = new EventEmitter();
    let checks = 0;
    checkEveryHalfTimeout(clock, 10_000, connection, () => ++checks === 0);
    await clock.advance(5_000);
    connection.emit('close');
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(60_000);
    expect(checks).toBe(1);
  });
});
