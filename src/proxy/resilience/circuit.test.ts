import { describe, expect, it } from 'vitest';
import { EjectionState } from './circuit.js';

const BASE_MS = 30_000;
const MAX_MS = 300_000;
const PROBE_TIMEOUT_MS = 30_000;

describe('EjectionState', () => {
  it('walks healthy -> ejected -> probing -> healthy', () => {
    const s = new EjectionState();
    s.consecutiveFailures = 5;
    expect(s.isSelectable(0, PROBE_TIMEOUT_MS)).toBe(true);
    expect(s.startProbe(0, PROBE_TIMEOUT_MS)).toBe(false);

    expect(s.eject(1_000, BASE_MS, MAX_MS)).toBe(31_000);
    expect(s).toMatchObject({ state: 'ejected', consecutiveFailures: 0, ejections: 1 });
    expect(s.isSelectable(30_999, PROBE_TIMEOUT_MS)).toBe(false);
    expect(s.startProbe(30_999, PROBE_TIMEOUT_MS)).toBe(false);
    expect(s.isSelectable(31_000, PROBE_TIMEOUT_MS)).toBe(true);

    expect(s.startProbe(31_000, PROBE_TIMEOUT_MS)).toBe(true);
    expect(s.state).toBe('probing');
    expect(s.isSelectable(31_001, PROBE_TIMEOUT_MS)).toBe(false);
    expect(s.startProbe(31_001, PROBE_TIMEOUT_MS)).toBe(false);

    s.restore(32_000);
    expect(s.state).toBe('healthy');
    expect(s.isSelectable(32_000, PROBE_TIMEOUT_MS)).toBe(true);
  });

  it('lengthens each consecutive ejection by base, up to max', () => {
    const s = new EjectionState();
    const lengths: number[] = [];
    let nowMs = 0;
    for (let i = 0; i < 12; i++) {
      const untilMs = s.eject(nowMs, BASE_MS, MAX_MS);
      lengths.push(untilMs - nowMs);
      nowMs = untilMs;
      s.startProbe(nowMs, PROBE_TIMEOUT_MS);
    }
    expect(lengths).toEqual([30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300].map((s) => s * 1_000));
  });

  it('forgives one ejection per base of healthy time after a return', () => {
    const s = new EjectionState();
    s.eject(0, BASE_MS, MAX_MS);
    s.eject(0, BASE_MS, MAX_MS);
    s.eject(0, BASE_MS, MAX_MS);
    s.restore(100_000);
    expect(s.ejectionsAt(100_000, BASE_MS)).toBe(3);
    expect(s.ejectionsAt(129_999, BASE_MS)).toBe(3);
    expect(s.ejectionsAt(130_000, BASE_MS)).toBe(2);
    expect(s.ejectionsAt(190_000, BASE_MS)).toBe(0);
    expect(s.ejectionsAt(10_000_000, BASE_MS)).toBe(0);
    // Ejected again after one base: 3 - 1 + 1 = the 3rd duration.
    expect(s.eject(130_000, BASE_MS, MAX_MS)).toBe(130_000 + 90_000);
  });

  it('forgives everything with a zero base instead of dividing by zero', () => {
    const s = new EjectionState();
    s.eject(0, 0, MAX_MS);
    s.restore(0);
    expect(s.ejectionsAt(0, 0)).toBe(0);
    expect(s.eject(0, 0, MAX_MS)).toBe(0);
  });

  it('reopens the probe slot when a probe is lost, by timeout or explicitly', () => {
    const s = new EjectionState();
    s.eject(0, BASE_MS, MAX_MS);
    expect(s.startProbe(BASE_MS, PROBE_TIMEOUT_MS)).toBe(true);
    expect(s.isSelectable(BASE_MS + PROBE_TIMEOUT_MS - 1, PROBE_TIMEOUT_MS)).toBe(false);
    expect(s.isSelectable(BASE_MS + PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS)).toBe(true);
    expect(s.startProbe(BASE_MS + PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS)).toBe(true);
    s.reopenProbe();
    expect(s.state).toBe('ejected');
    expect(s.isSelectable(BASE_MS + PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS)).toBe(true);
  });

  it('leaves a healthy or ejected state alone on reopenProbe', () => {
    const s = new EjectionState();
    s.reopenProbe();
    expect(s.state).toBe('healthy');
    s.eject(0, BASE_MS, MAX_MS);
    s.reopenProbe();
    expect(s.state).toBe('ejected');
    expect(s.isSelectable(1, PROBE_TIMEOUT_MS)).toBe(false);
  });
});
