import { describe, expect, it } from 'vitest';
import { MAX_RETRY_DELAY_MS, renewAtMs, retryDelayMs } from './renewal.js';

describe('renewAtMs', () => {
  it('is the fraction point without jitter, ±10% of it at the extremes, inside the validity', () => {
    expect(renewAtMs(1000, 11_000, 0.5, () => 0.5)).toBe(6000);
    expect(renewAtMs(1000, 11_000, 0.5, () => 0)).toBe(5500);
    expect(renewAtMs(1000, 11_000, 0.5, () => 0.999999)).toBe(6500);
    expect(renewAtMs(1000, 11_000, 0.99, () => 0.999999)).toBe(11_000);
  });
});

describe('retryDelayMs', () => {
  it('doubles from 1 s with equal jitter and caps at 30 s', () => {
    expect([1, 2, 3].map((n) => retryDelayMs(n, () => 0))).toEqual([500, 1000, 2000]);
    expect([1, 2, 3].map((n) => retryDelayMs(n, () => 0.5))).toEqual([750, 1500, 3000]);
    expect(retryDelayMs(50, () => 0.999999)).toBeLessThanOrEqual(MAX_RETRY_DELAY_MS);
    expect(retryDelayMs(50, () => 0)).toBe(MAX_RETRY_DELAY_MS / 2);
  });
});
