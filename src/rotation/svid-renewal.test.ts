import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSigilError } from '../spiffe/errors.js';
import { seededRandom } from '../spiffe/seeded-random.test-support.js';
import { renewAtMs, shouldRenew } from './svid-renewal.js';

const HOUR_MS = 3_600_000;
const T0 = 1_700_000_000_000;
const svid = { notBeforeMs: T0, notAfterMs: T0 + HOUR_MS };

describe('renewAtMs', () => {
  it('renews at half the lifetime when the jitter draw is centred', () => {
    expect(renewAtMs(svid, {}, () => 0.5)).toBe(T0 + HOUR_MS / 2);
  });

  it('spreads ±10% of the renewal point at the extremes of the draw', () => {
    expect(renewAtMs(svid, {}, () => 0)).toBe(T0 + 0.45 * HOUR_MS);
    // random() is below 1, so the late edge is approached, never passed.
    expect(renewAtMs(svid, {}, () => 0.999_999_999)).toBe(T0 + 0.55 * HOUR_MS);
  });

  it('honours a custom fraction and jitter', () => {
    expect(renewAtMs(svid, { fraction: 0.8, jitterFraction: 0 }, () => 0.9)).toBe(T0 + 0.8 * HOUR_MS);
    expect(renewAtMs(svid, { fraction: 0.5, jitterFraction: 0.2 }, () => 0)).toBe(T0 + 0.4 * HOUR_MS);
  });

  it('clamps into the validity window', () => {
    // fraction 1 with +jitter would land after notAfter.
    expect(renewAtMs(svid, { fraction: 1, jitterFraction: 0.5 }, () => 0.99)).toBe(svid.notAfterMs);
    // A draw outside [0, 1) from a faulty random source still cannot leave the window.
    expect(renewAtMs(svid, { jitterFraction: 0.5 }, () => -10)).toBe(svid.notBeforeMs);
    // An empty window renews at once.
    expect(renewAtMs({ notBeforeMs: T0, notAfterMs: T0 }, {}, () => 0.7)).toBe(T0);
  });

  it.each([
    ['fraction', { fraction: 0 }],
    ['fraction', { fraction: 1.5 }],
    ['fraction', { fraction: Number.NaN }],
    ['jitterFraction', { jitterFraction: -0.1 }],
    ['jitterFraction', { jitterFraction: 1 }],
  ])('refuses a bad %s with ERR_CONFIG_INVALID naming it', (field, options) => {
    let err: unknown;
    try {
      renewAtMs(svid, options, () => 0.5);
    } catch (e) {
      err = e;
    }
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`^svid renewal: ${field} must be`));
    expect((err as { field: string }).field).toBe(field);
  });

  it('always lands within ±10% of the half-life point and within validity (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 42 }),
        fc.integer({ min: 1, max: 400 * 24 * HOUR_MS }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (notBeforeMs, lifetimeMs, draw) => {
          const window = { notBeforeMs, notAfterMs: notBeforeMs + lifetimeMs };
          const at = renewAtMs(window, {}, () => draw);
          const pointMs = lifetimeMs / 2;
          // Rounding to whole milliseconds may move the result by half a millisecond.
          expect(at - notBeforeMs).toBeGreaterThanOrEqual(pointMs - 0.1 * pointMs - 0.5);
          expect(at - notBeforeMs).toBeLessThanOrEqual(pointMs + 0.1 * pointMs + 0.5);
          expect(at).toBeGreaterThanOrEqual(window.notBeforeMs);
          expect(at).toBeLessThanOrEqual(window.notAfterMs);
          expect(Number.isInteger(at)).toBe(true);
        },
      ),
    );
  });

  it('spreads 10,000 SVIDs minted at the same instant over most of the jitter window', () => {
    const random = seededRandom(42);
    const times = Array.from({ length: 10_000 }, () => renewAtMs(svid, {}, random));
    const pointMs = HOUR_MS / 2;
    const spreadMs = Math.max(...times) - Math.min(...times);
    expect(spreadMs).toBeGreaterThanOrEqual(0.15 * pointMs);
    // No single second carries a burst: the 360s window averages ~28 renewals a second.
    const perSecond = new Map<number, number>();
    for (const t of times)
      perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    expect(Math.max(...perSecond.values())).toBeLessThan(60);
  });
});

describe('shouldRenew', () => {
  it('is false before the renewal time and true at and after it', () => {
    const at = renewAtMs(svid, {}, () => 0.5);
    expect(shouldRenew(at - 1, at)).toBe(false);
    expect(shouldRenew(at, at)).toBe(true);
    expect(shouldRenew(at + 1, at)).toBe(true);
  });
});
