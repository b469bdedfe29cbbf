import { describe, expect, it } from 'vitest';
import { fixedRandom, seededRandom } from '../../../spiffe/seeded-random.test-support.js';
import { shouldSkipWarming, slowStartWeight } from './slow-start.js';

describe('slowStartWeight', () => {
  it.each([
    [0, 0.1],
    [2_500, 0.325],
    [5_000, 0.55],
    [9_999, 0.1 + 0.9 * 0.9999],
    [10_000, 1],
    [60_000, 1],
    [-5, 0.1],
  ])('is %d ms into a 10 s window: %d', (ageMs, weight) => {
    expect(slowStartWeight(ageMs, 10_000)).toBeCloseTo(weight, 12);
  });

  it('is always 1 with a zero window', () => {
    expect(slowStartWeight(0, 0)).toBe(1);
    expect(slowStartWeight(-1, 0)).toBe(1);
  });
});

describe('shouldSkipWarming', () => {
  it('never skips a warm endpoint', () => {
    expect(shouldSkipWarming(1, fixedRandom(0.999))).toBe(false);
  });

  it('skips with probability 1 - weight', () => {
    expect(shouldSkipWarming(0.25, fixedRandom(0.2))).toBe(false);
    expect(shouldSkipWarming(0.25, fixedRandom(0.25))).toBe(true);
    const random = seededRandom(5);
    let skipped = 0;
    for (let i = 0; i < 10_000; i++) if (shouldSkipWarming(0.25, random)) skipped++;
    expect(skipped / 10_000).toBeCloseTo(0.75, 1);
  });
});
