import { describe, expect, it } from 'vitest';
import { fixedRandom, seededRandom } from '../../spiffe/seeded-random.test-support.js';
import { backoffDelayMs, retryAfterMs } from './backoff.js';

/** Just below 1: the top of what `random` may return. */
const ALMOST_ONE = 1 - 2 ** -53;

describe('backoffDelayMs', () => {
  it('caps the draw at base * 2^(retry-1): 25, 50, 100, 200 ms for retries 1-4', () => {
    expect([1, 2, 3, 4].map((retry) => backoffDelayMs(retry, 25, 1_000, fixedRandom(0.5)))).toEqual([
      12.5, 25, 50, 100,
    ]);
  });

  it('never exceeds max, however many retries', () => {
    expect(backoffDelayMs(5, 25, 250, fixedRandom(0.5))).toBe(125);
    expect(backoffDelayMs(60, 25, 250, fixedRandom(0.5))).toBe(125);
    // 2^(retry-1) overflows to Infinity here; the cap must still be max, not NaN.
    expect(backoffDelayMs(5_000, 25, 250, fixedRandom(0.5))).toBe(125);
    expect(backoffDelayMs(5_000, 0, 250, fixedRandom(0.5))).toBe(0);
  });

  it('draws over the whole interval [0, cap) (full jitter), not near the cap', () => {
    expect(backoffDelayMs(3, 25, 1_000, fixedRandom(0))).toBe(0);
    const top = backoffDelayMs(3, 25, 1_000, fixedRandom(ALMOST_ONE));
    expect(top).toBeLessThan(100);
    expect(top).toBeGreaterThan(99.99);
    const random = seededRandom(7);
    const draws = Array.from({ length: 10_000 }, () => backoffDelayMs(3, 25, 1_000, random));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    expect(mean).toBeGreaterThan(48);
    expect(mean).toBeLessThan(52);
    expect(draws.filter((d) => d < 10).length).toBeGreaterThan(800);
    expect(draws.filter((d) => d >= 90).length).toBeGreaterThan(800);
  });

  it('treats a retry below 1 as the first', () => {
    expect(backoffDelayMs(0, 25, 1_000, fixedRandom(0.5))).toBe(12.5);
  });

  it('is 0 with a zero base or max', () => {
    expect(backoffDelayMs(3, 0, 1_000, fixedRandom(0.5))).toBe(0);
    expect(backoffDelayMs(3, 25, 0, fixedRandom(0.5))).toBe(0);
  });
});

describe('retryAfterMs', () => {
  const NOW_MS = Date.UTC(2024, 5, 1, 12, 0, 0);

  it.each([
    ['0', 0],
    ['3', 3_000],
    [' 120 ', 120_000],
    ['0000000007', 7_000],
    ['9999999999', 9_999_999_999_000],
  ])('reads delay-seconds %j', (value, expected) => {
    expect(retryAfterMs(value, NOW_MS)).toBe(expected);
  });

  it('reads the three HTTP-date forms, relative to now', () => {
    expect(retryAfterMs('Sat, 01 Jun 2024 12:00:30 GMT', NOW_MS)).toBe(30_000);
    expect(retryAfterMs('Saturday, 01-Jun-24 12:01:00 GMT', NOW_MS)).toBe(60_000);
    expect(retryAfterMs('Sat Jun  1 12:00:05 2024', NOW_MS)).toBe(5_000);
    expect(retryAfterMs('Sat Jun 15 12:00:00 2024', NOW_MS)).toBe(14 * 86_400_000);
  });

  it('gives 0 for a date already past', () => {
    expect(retryAfterMs('Sun, 06 Nov 1994 08:49:37 GMT', NOW_MS)).toBe(0);
    expect(retryAfterMs('Sat, 01 Jun 2024 11:59:59 GMT', NOW_MS)).toBe(0);
    expect(retryAfterMs('Sat, 01 Jan 0050 00:00:00 GMT', NOW_MS)).toBe(0);
  });

  it('reads a two-digit year more than 50 years ahead as the past century (RFC 9110 §5.6.7)', () => {
    // 2074 is within 50 years of 2024: the future.
    expect(retryAfterMs('Friday, 01-Jun-74 12:00:00 GMT', NOW_MS)).toBe(Date.UTC(2074, 5, 1, 12) - NOW_MS);
    // 2080 would be 56 years ahead: it is 1980, long past.
    expect(retryAfterMs('Saturday, 01-Jun-80 12:00:00 GMT', NOW_MS)).toBe(0);
  });

  it('accepts 29 February in a leap year only', () => {
    expect(retryAfterMs('Thu, 29 Feb 2028 00:00:00 GMT', NOW_MS)).toBe(Date.UTC(2028, 1, 29) - NOW_MS);
    expect(retryAfterMs('Thu, 29 Feb 2100 00:00:00 GMT', NOW_MS)).toBeNull();
  });

  it.each([
    [undefined],
    [''],
    ['   '],
    ['-1'],
    ['1.5'],
    ['+5'],
    ['0x10'],
    ['1e3'],
    ['5 s'],
    // More than 10 digits is refused, not trusted: a bound on what a server can make us wait.
    ['12345678901'],
    ['00000000001'],
    ['soon'],
    // Dates that do not exist or break the grammar.
    ['Sat, 31 Jun 2024 12:00:00 GMT'],
    ['Sat, 30 Feb 2024 12:00:00 GMT'],
    ['Sat, 01 Jun 2024 24:00:00 GMT'],
    ['Sat, 01 Jun 2024 12:60:00 GMT'],
    ['Sat, 01 Jun 2024 12:00:00 UTC'],
    ['Sat, 1 Jun 2024 12:00:00 GMT'],
    ['Sat, 01 June 2024 12:00:00 GMT'],
    ['Xyz, 01 Jun 2024 12:00:00 GMT'],
    ['2024-06-01T12:00:30Z'],
    ['Sat, 01 Jun 2024 12:00:30 GMT trailing'],
    ['Sat Jun 1 12:00:05 2024'],
  ])('refuses %j', (value) => {
    expect(retryAfterMs(value, NOW_MS)).toBeNull();
  });
});
