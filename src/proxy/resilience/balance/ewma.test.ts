import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../spiffe/clock.js';
import { DEFAULT_INITIAL_RTT_MS, PeakEwma } from './ewma.js';

const DECAY_MS = 10_000;

describe('PeakEwma', () => {
  it('starts at the initial RTT, 30 ms unless given', () => {
    const clock = new ManualClock();
    expect(new PeakEwma(DECAY_MS, clock).valueMs).toBe(DEFAULT_INITIAL_RTT_MS);
    expect(new PeakEwma(DECAY_MS, clock, 5).valueMs).toBe(5);
  });

  it('takes a sample above the estimate at once (peak)', async () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma(DECAY_MS, clock, 10);
    await clock.advance(1);
    ewma.observe(500);
    expect(ewma.valueMs).toBe(500);
  });

  it('blends a lower sample in by exp(-elapsed / decay)', async () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma(DECAY_MS, clock, 100);
    await clock.advance(DECAY_MS);
    ewma.observe(10);
    // w = e^-1: 100 * w + 10 * (1 - w).
    const w = Math.exp(-1);
    expect(ewma.valueMs).toBeCloseTo(100 * w + 10 * (1 - w), 9);
  });

  it('barely moves on a lower sample right after an update', async () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma(DECAY_MS, clock, 100);
    await clock.advance(10);
    ewma.observe(10);
    expect(ewma.valueMs).toBeGreaterThan(99.9);
    expect(ewma.valueMs).toBeLessThan(100);
  });

  it('converges to a steady latency after a spike, over a few decay times', async () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma(DECAY_MS, clock, 5);
    ewma.observe(200);
    for (let i = 0; i < 400; i++) {
      await clock.advance(100);
      ewma.observe(5);
    }
    // 40 s of 5 ms samples: the 200 ms spike is down to ~200 * e^-4.
    expect(ewma.valueMs).toBeGreaterThan(5);
    expect(ewma.valueMs).toBeLessThan(5 + 200 * Math.exp(-4) + 0.5);
  });

  it('decays toward zero between samples without changing the estimate', async () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma(DECAY_MS, clock, 100);
    const startMs = clock.nowMs();
    await clock.advance(DECAY_MS);
    expect(ewma.valueMs).toBeCloseTo(100 * Math.exp(-1), 9);
    expect(ewma.valueAt(startMs + 2 * DECAY_MS)).toBeCloseTo(100 * Math.exp(-2), 9);
    // Reading is a projection: reading again later gives the same curve, not a compounded one.
    await clock.advance(DECAY_MS);
    expect(ewma.valueMs).toBeCloseTo(100 * Math.exp(-2), 9);
  });

  it('weighs cost by the requests outstanding: value * (outstanding + 1)', () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma(DECAY_MS, clock, 20);
    expect(ewma.cost(0)).toBe(20);
    expect(ewma.cost(3)).toBe(80);
  });

  it('keeps only the last sample with a zero decay', async () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma(0, clock, 100);
    await clock.advance(1);
    ewma.observe(7);
    expect(ewma.valueMs).toBe(7);
    ewma.observe(3);
    // Same instant: no time has passed, so the lower sample does not move it.
    expect(ewma.valueMs).toBe(7);
  });
});
