import { describe, expect, it } from 'vitest';
import { fixedRandom, seededRandom } from '../../../spiffe/seeded-random.test-support.js';
import { pickP2C } from './p2c.js';

const byValue = (n: number) => n;

describe('pickP2C', () => {
  it('returns undefined for no candidates and the one for one', () => {
    expect(pickP2C([], 0, byValue, fixedRandom(0.5))).toBeUndefined();
    expect(pickP2C([7, 8, 9], 0, byValue, fixedRandom(0.5))).toBeUndefined();
    expect(pickP2C([7, 8, 9], 1, byValue, fixedRandom(0.5))).toBe(7);
  });

  it('returns the cheaper of the two drawn', () => {
    // Draws index 0 (cost 30) then, from the other two slots, index 2 (cost 10).
    expect(pickP2C([30, 20, 10], 3, byValue, fixedRandom(0, 0.9))).toBe(10);
    expect(pickP2C([30, 20, 10], 3, byValue, fixedRandom(0.9, 0))).toBe(10);
    expect(pickP2C([30, 20, 10], 3, byValue, fixedRandom(0, 0))).toBe(20);
  });

  it('draws two distinct candidates, so the dearest is never picked', () => {
    const random = seededRandom(1);
    const seen = new Map<number, number>();
    for (let i = 0; i < 3_000; i++) {
      const picked = pickP2C([3, 1, 2], 3, byValue, random)!;
      seen.set(picked, (seen.get(picked) ?? 0) + 1);
    }
    expect(seen.get(3)).toBeUndefined();
    // The cheapest wins every pair it is in (2 of 3), the middle one the remaining third.
    expect(seen.get(1)! / 3_000).toBeCloseTo(2 / 3, 1);
    expect(seen.get(2)! / 3_000).toBeCloseTo(1 / 3, 1);
  });

  it('looks only at the first count of a reused array', () => {
    const scratch = [5, 6, 0, 0];
    const random = seededRandom(2);
    for (let i = 0; i < 200; i++) expect(pickP2C(scratch, 2, byValue, random)).toBe(5);
  });

  it('stays in range when random returns 1', () => {
    expect(pickP2C([4, 5, 6], 3, byValue, fixedRandom(1))).toBe(5);
  });

  it('spreads ties over the candidates', () => {
    const random = seededRandom(3);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4_000; i++) counts[pickP2C([0, 1, 2, 3], 4, () => 1, random)!]!++;
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });
});
