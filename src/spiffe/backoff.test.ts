import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

describe('Backoff', () => {
  it('doubles up to the cap, jitters within [ceiling/2, ceiling], and resets', () => {
    let b = Backoff.create({ initialMs: 100, maxMs: 500 });
    const ceilings = [];
    for (let i = 0; i < 5; i++) {
      ceilings.push(b.delayMs(() => 1));
      expect(b.delayMs(() => 0)).toBe(ceilings[i]! / 2);
      b = b.next();
    }
    expect(ceilings).toEqual([100, 200, 400, 500, 500]);
    expect(b.reset().delayMs(() => 1)).toBe(100);
  });

  it('refuses a max below the initial delay', () => {
    expect(() => Backoff.create({ initialMs: 100, maxMs: 50 })).toThrow(
      /maxMs must not be less than initialMs/,
    );
  });
});
