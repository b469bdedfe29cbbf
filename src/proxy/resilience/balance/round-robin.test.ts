import { describe, expect, it } from 'vitest';
import { RoundRobin } from './round-robin.js';

describe('RoundRobin', () => {
  it('cycles through the candidates in order', () => {
    const rr = new RoundRobin();
    const list = ['a', 'b', 'c'];
    expect(Array.from({ length: 7 }, () => rr.next(list, 3))).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  it('returns undefined with no candidates', () => {
    expect(new RoundRobin().next(['a'], 0)).toBeUndefined();
  });

  it('uses only the first count of a reused array, and wraps when the count shrinks', () => {
    const rr = new RoundRobin();
    const scratch = ['a', 'b', 'c', 'd'];
    expect([rr.next(scratch, 4), rr.next(scratch, 4), rr.next(scratch, 4)]).toEqual(['a', 'b', 'c']);
    expect([rr.next(scratch, 2), rr.next(scratch, 2), rr.next(scratch, 2)]).toEqual(['a', 'b', 'a']);
  });

  it('starts where told', () => {
    const rr = new RoundRobin(2);
    expect([rr.next(['a', 'b', 'c'], 3), rr.next(['a', 'b', 'c'], 3)]).toEqual(['c', 'a']);
  });
});
