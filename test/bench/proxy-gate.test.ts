// bench:proxy's load gate and issue 14's figures, without running a bench: the gate's decision, its
// retake loop on a manual clock, the valid-repeat medians and ranges with the load seen, the
// per-sidecar CPU at 1,000 req/s and p99 checks, and the rendering of the gate line in RESULTS.md.
import { describe, expect, it } from 'vitest';
import type { LoadResult } from '../../bench/proxy-load.js';
import {
  type GatedRepeat,
  type GateProbe,
  gateDecision,
  gateLine,
  QUIET_SAMPLE_MS,
  QUIET_WAIT_MS,
  runGated,
  summarizeGate,
  validRuns,
} from '../../bench/proxy-repeats.js';
import {
  type RunResult,
  type ScenarioKey,
  type ScenarioRuns,
  scenarioFigures,
  type TargetName,
} from '../../bench/proxy-scenario-figures.js';
import { ISSUE_5_TARGETS, sidesOf, TARGETS } from '../../bench/proxy-targets.js';
import { renderResultsMd } from '../../bench/results-md.js';
import { ManualClock } from '../../src/spiffe/clock.js';

const gate = { maxLoadCores: 0.25, retries: 3 };

/** A probe whose successive load measurements are `loads`, in order, on a manual clock. */
function fakeProbe(loads: number[]): GateProbe & { clock: ManualClock; taken: () => number } {
  const clock = new ManualClock();
  let next = 0;
  return {
    clock,
    startLoad: () => () => loads[next++] ?? Number.NaN,
    taken: () => next,
  };
}

/** Runs `work` while stepping the manual clock a quiet sample at a time, until it settles. */
async function drive<T>(clock: ManualClock, work: Promise<T>): Promise<T> {
  let done = false;
  const result = work.finally(() => {
    done = true;
  });
  for (let i = 0; i < 1_000 && !done; i++) await clock.advance(QUIET_SAMPLE_MS);
  return result;
}

describe('load gate decision', () => {
  it('keeps a take at or under --max-load, retakes above it while retries last, then gives up', () => {
    expect(gateDecision(0.25, 0, gate)).toBe('valid');
    expect(gateDecision(0.02, 3, gate)).toBe('valid');
    expect(gateDecision(0.26, 0, gate)).toBe('retake');
    expect(gateDecision(0.9, 2, gate)).toBe('retake');
    expect(gateDecision(0.9, 3, gate)).toBe('invalid');
    expect(gateDecision(0.9, 0, { maxLoadCores: 0.25, retries: 0 })).toBe('invalid');
    // A load that could not be measured is not quiet.
    expect(gateDecision(Number.NaN, 0, gate)).toBe('retake');
  });
});

describe('gated repeat loop', () => {
  it('keeps the first take when the machine was quiet, without waiting', async () => {
    const probe = fakeProbe([0.05]);
    const lines: string[] = [];
    let takes = 0;
    const got = await runGated(
      'repeat 1/3 h1',
      async () => ++takes,
      gate,
      probe,
      (l) => lines.push(l),
    );
    expect(got).toEqual({ valid: true, value: 1, loadsCores: [0.05] });
    expect(lines).toEqual([]);
    expect(probe.clock.nowMs()).toBe(new ManualClock().nowMs());
  });

  it('waits for quiet after a busy take, saying so, and keeps the quiet retake', async () => {
    // take 1 busy; quiet checks: busy for 6 s, then quiet; take 2 quiet.
    const probe = fakeProbe([0.7, 0.62, 0.5, 0.5, 0.5, 0.5, 0.55, 0.4, 0.1, 0.08]);
    const lines: string[] = [];
    let takes = 0;
    const got = await drive(
      probe.clock,
      runGated(
        'repeat 2/3 h1',
        async () => ++takes,
        gate,
        probe,
        (l) => lines.push(l),
      ),
    );
    expect(got).toEqual({ valid: true, value: 2, loadsCores: [0.7, 0.08] });
    expect(lines).toEqual([
      'repeat 2/3 h1: other load 0.70 cores > --max-load 0.25: not a figure, taking it again (retake 1 of 3)',
      // One progress line per 5 s of waiting, not per sample.
      '  waiting for the machine to be quiet: other load 0.62 cores',
      '  waiting for the machine to be quiet: other load 0.55 cores',
    ]);
  });

  it('counts a repeat invalid after --retries busy retakes, and bounds each wait', async () => {
    const probe = fakeProbe(new Array(200).fill(0.9));
    const lines: string[] = [];
    const started = probe.clock.nowMs();
    const got = await drive(
      probe.clock,
      runGated(
        'repeat 1/2 tcp',
        async () => 'run',
        { maxLoadCores: 0.25, retries: 1 },
        probe,
        (l) => lines.push(l),
      ),
    );
    expect(got).toEqual({ valid: false, loadsCores: [0.9, 0.9] });
    expect(got.value).toBeUndefined();
    // One wait, of QUIET_WAIT_MS at most, then the retake runs anyway.
    expect(probe.clock.nowMs() - started).toBeLessThanOrEqual(QUIET_WAIT_MS + QUIET_SAMPLE_MS);
    expect(lines.at(-2)).toBe(
      '  machine still busy after 30 s (other load 0.90 cores): taking the repeat again anyway',
    );
    expect(lines.at(-1)).toBe(
      'repeat 1/2 tcp: INVALID, not a figure: other load 0.90, 0.90 cores in its 2 take(s), over --max-load 0.25',
    );
  });
});

describe('valid repeats and the gate line', () => {
  const repeats: GatedRepeat<string>[] = [
    { valid: true, value: 'a', loadsCores: [0.02] },
    { valid: true, value: 'b', loadsCores: [0.6, 0.11] },
    { valid: false, loadsCores: [0.7, 0.9] },
  ];

  it('keeps only the valid repeats, in order', () => {
    expect(validRuns(repeats)).toEqual(['a', 'b']);
  });

  it('counts valid repeats and retakes, and gives the load of the kept takes', () => {
    const s = summarizeGate(repeats);
    expect(s).toEqual({
      repeats: 3,
      valid: 2,
      retakes: 2,
      validLoadsCores: [0.02, 0.11],
      allLoadsCores: [0.02, 0.6, 0.11, 0.7, 0.9],
    });
    expect(gateLine(s)).toBe('valid 2 of 3 (2 retakes), other load 0.02–0.11 cores');
    expect(gateLine(summarizeGate([{ valid: true, value: 'a', loadsCores: [0.05] }]))).toBe(
      'valid 1 of 1, other load 0.05 cores',
    );
  });

  it('says when no repeat is valid, with every take load', () => {
    const s = summarizeGate([
      { valid: false, loadsCores: [0.6, 0.75] },
      { valid: false, loadsCores: [0.9] },
    ]);
    expect(gateLine(s)).toBe('no valid repeat: other load 0.60–0.90 cores');
  });
});

/** A load result at 1,000 req/s: 1,000 requests, the given percentiles. */
const load = (p50Ms: number, p99Ms: number): LoadResult => ({
  type: 'done',
  sent: 1_000,
  completed: 1_000,
  errors: 0,
  firstError: null,
  dropped: 0,
  elapsedMs: 1_000,
  p50Ms,
  p90Ms: p99Ms,
  p99Ms,
  maxMs: p99Ms,
  meanMs: p50Ms,
});

/** One target's runs: saturated CPU µs/request and req/s; at 1k, each side's CPU µs/request and p99. */
function run(satUs: number, reqPerS: number, side: [number, number] | null, p99Ms: number): RunResult {
  const requests = 10_000;
  return {
    sat: { reqPerS, requests, errors: 0, cpuMs: (satUs * requests) / 1_000, sysMs: 0 },
    rate: {
      load: load(p99Ms / 4, p99Ms),
      cpuMs: side ? side[0] + side[1] : null,
      // 1,000 requests: ms of CPU = µs per request.
      sideCpuMs: side ? { client: side[0], server: side[1] } : null,
    },
  };
}

function repeatOf(sigilSatUs: number, sigilSides: [number, number], sigilP99: number) {
  return {
    direct: run(0, 30_000, null, 1),
    sigil: run(sigilSatUs, 7_000, sigilSides, sigilP99),
    floor: run(130, 7_500, [90, 90], 5),
    haproxy: run(70, 14_000, [60, 60], 4),
    nginx: {},
    caddy: {},
  } satisfies Record<TargetName, RunResult>;
}

function scenario(key: ScenarioKey, gated: GatedRepeat<Record<TargetName, RunResult>>[]): ScenarioRuns {
  return { key, repeats: validRuns(gated), hasFloor: true, gate: summarizeGate(gated) };
}

const byName = (figures: { name: string }[], name: string) => {
  const found = figures.find((f) => f.name === name);
  expect(found, name).toBeDefined();
  return found as ReturnType<typeof scenarioFigures>['checks'][number];
};

describe('scenario figures over valid repeats', () => {
  it('takes medians and ranges of the valid repeats only, each with the gate line', () => {
    const s = scenario('h1', [
      { valid: true, value: repeatOf(126, [100, 110], 5), loadsCores: [0.02] },
      // An invalid repeat with absurd figures must not move any median.
      { valid: false, loadsCores: [0.8, 0.9, 0.7, 0.6] },
      { valid: true, value: repeatOf(140, [120, 130], 6), loadsCores: [0.5, 0.11] },
    ]);
    const { checks } = scenarioFigures(s);
    const cpu = byName(checks, 'h1: CPU per request (saturated) vs HAProxy');
    // 126/70 = 1.80, 140/70 = 2.00: median 1.90, met at issue 14's ≤ 1.9x.
    expect(cpu).toMatchObject({ value: '1.90x', range: '1.80–2.00', target: '≤ 1.9x', source: 'issue 14' });
    expect(cpu.pass).toBe(true);
    expect(cpu.repeats).toBe('valid 2 of 3 (4 retakes), other load 0.02–0.11 cores');
    expect(byName(checks, 'h1: throughput vs HAProxy')).toMatchObject({
      value: '0.50x',
      target: '≥ 0.6x',
      source: 'issue 14',
      pass: false,
    });
    expect(byName(checks, 'h1: p50 at 1k req/s over HAProxy')).toMatchObject({ source: 'issue 5' });
    for (const c of checks) expect(c.repeats, c.name).toBe(cpu.repeats);
  });

  it('checks each Sigil sidecar under 150 µs at 1k req/s against Istio and the other pairs', () => {
    const s = scenario('h1', [
      { valid: true, value: repeatOf(126, [140, 150], 4.8), loadsCores: [0.02] },
      { valid: true, value: repeatOf(126, [144, 160], 5.6), loadsCores: [0.03] },
    ]);
    const { checks } = scenarioFigures(s);
    const client = byName(checks, 'h1: CPU per request at 1k req/s, Sigil client sidecar (outbound)');
    expect(client).toMatchObject({
      value: '142.0 µs',
      range: '140.0 µs–144.0 µs',
      target: '< 150 µs',
      source: 'issue 14',
      pass: true,
    });
    expect(client.reference).toContain('200 µs/request per sidecar');
    expect(client.reference).toContain('HAProxy 60.0 µs');
    expect(client.reference).toContain('Node floor 90.0 µs');
    // 155 µs: not under 150.
    expect(byName(checks, 'h1: CPU per request at 1k req/s, Sigil server sidecar (inbound)')).toMatchObject({
      value: '155.0 µs',
      pass: false,
    });
    // p99 4.8/4 = 1.2 and 5.6/4 = 1.4: median 1.30, met at ≤ 1.3x.
    expect(byName(checks, 'h1: p99 at 1k req/s vs HAProxy')).toMatchObject({
      value: '1.30x',
      range: '1.20–1.40',
      target: '≤ 1.3x',
      pass: true,
    });
  });

  it('reports the per-sidecar figures of tcp and h2 for information', () => {
    const s = scenario('tcp', [{ valid: true, value: repeatOf(90, [50, 55], 4), loadsCores: [0.01] }]);
    const { checks, info } = scenarioFigures(s);
    expect(checks.map((c) => c.name)).not.toContain(
      'tcp: CPU per request at 1k req/s, Sigil client sidecar (outbound)',
    );
    expect(byName(info, 'tcp: CPU per request at 1k req/s, Sigil client sidecar (outbound)').value).toBe(
      '50.0 µs',
    );
    expect(byName(checks, 'tcp: CPU per request (saturated) vs HAProxy')).toMatchObject({
      value: '1.29x',
      target: '≤ 1.3x',
      source: 'issue 14',
    });
  });

  it('with no valid repeat gives no figure: every check says so and is missed', () => {
    const s = scenario('h1', [
      { valid: false, loadsCores: [0.6, 0.7] },
      { valid: false, loadsCores: [0.9] },
    ]);
    const { checks, info } = scenarioFigures(s);
    expect(checks.map((c) => c.name)).toEqual([
      'h1: CPU per request (saturated) vs HAProxy',
      'h1: throughput vs HAProxy',
      'h1: p50 at 1k req/s over HAProxy',
      'h1: failed requests through Sigil',
      'h1: CPU per request at 1k req/s, Sigil client sidecar (outbound)',
      'h1: CPU per request at 1k req/s, Sigil server sidecar (inbound)',
      'h1: p99 at 1k req/s vs HAProxy',
    ]);
    for (const c of checks) {
      expect(c, c.name).toMatchObject({ value: 'no valid repeat: other load 0.60–0.90 cores', pass: false });
      expect(c.range).toBeUndefined();
    }
    for (const f of info) expect(f.value).toBe('no valid repeat: other load 0.60–0.90 cores');
  });
});

describe('issue 14 targets', () => {
  it('are never looser than issue 5 where both set one', () => {
    expect(TARGETS.h1.cpuRatio).toBeLessThanOrEqual(ISSUE_5_TARGETS.h1.cpuRatio);
    expect(TARGETS.h1.throughputRatio).toBeGreaterThanOrEqual(ISSUE_5_TARGETS.h1.throughputRatio);
    expect(TARGETS.h1.p50OverMs).toBeLessThanOrEqual(ISSUE_5_TARGETS.h1.p50OverMs);
    expect(TARGETS.tcp.cpuRatio).toBeLessThanOrEqual(ISSUE_5_TARGETS.tcp.cpuRatio);
    expect(TARGETS.tcp.throughputRatio).toBeGreaterThanOrEqual(ISSUE_5_TARGETS.tcp.throughputRatio);
    expect(TARGETS.rssIdleMb).toBeLessThanOrEqual(ISSUE_5_TARGETS.rssIdleMb);
    expect(TARGETS.rssLoadMb).toBeLessThanOrEqual(ISSUE_5_TARGETS.rssLoadMb);
  });

  it('split a pair by side: client processes first, then as many server ones', () => {
    expect(sidesOf([11, 22])).toEqual({ client: [11], server: [22] });
    expect(sidesOf([11, 12, 21, 22])).toEqual({ client: [11, 12], server: [21, 22] });
    expect(sidesOf([])).toEqual({ client: [], server: [] });
  });
});

describe('RESULTS.md with gated figures', () => {
  it('shows how many repeats a figure is over and the load they saw, beside its median', () => {
    const md = renderResultsMd({
      startedIso: '2026-12-07T23:00:00.000Z',
      quick: false,
      durationS: 60,
      machine: { cpuModel: 'Test CPU', cores: 2, ramGiB: 8, node: 'v20.20.0', os: 'Linux' },
      steps: [
        {
          title: 'Sidecar proxy',
          command: 'npm run bench:proxy',
          durationS: 60,
          loadBefore: 0.1,
          results: {
            bench: 'proxy',
            figures: [
              {
                name: 'h1: CPU per request (saturated) vs HAProxy',
                value: '2.10x',
                range: '2.00–2.20',
                target: '≤ 1.9x',
                source: 'issue 14',
                pass: false,
                repeats: 'valid 3 of 3 (1 retake), other load 0.02–0.11 cores',
              },
            ],
          },
        },
      ],
    });
    const row = md.split('\n').find((l) => l.startsWith('| h1: CPU per request'));
    expect(row).toContain('| 2.10x (2.00–2.20); valid 3 of 3 (1 retake), other load 0.02–0.11 cores |');
  });
});
