// The tables bench:proxy (proxy.ts) prints after its repeats: one per scenario (each target's medians
// and ratios to HAProxy over the valid repeats) and one of the sidecars' memory. Each returns the
// checks and information figures it read, in the order the report and RESULTS.md list them.
import type { LoadResult } from './proxy-load.js';
import { peerFigures, peerMemoryFigures } from './proxy-peer-figures.js';
import { PEER_LABELS, type PeerName, type PeerPair } from './proxy-peers.js';
import { type GatedRepeat, gateLine, summarizeGate, validRuns } from './proxy-repeats.js';
import { type Check, fmt, fmtRatio, log, median, Table } from './proxy-report.js';
import {
  errorsOf,
  type RunResult,
  type ScenarioKey,
  type ScenarioRuns,
  satCpu,
  scenarioFigures,
  type TargetName,
  throughput,
} from './proxy-scenario-figures.js';
import type { BenchProc } from './proxy-setup.js';
import { rateSideCpuUs } from './proxy-sidecar-figures.js';
import { ISTIO_REFERENCE, SIDE_LABEL, SIDES, SOURCES, TARGETS } from './proxy-targets.js';
import { type Figure, rangeOf } from './results.js';

export const ALL_TARGETS: readonly TargetName[] = ['direct', 'sigil', 'floor', 'haproxy', 'nginx', 'caddy'];

/** `1.23x`, or `–` when a side has no figure (no valid repeat). */
const fmtTimes = (ratio: number) => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '–');

/** What one take of a scenario measured. */
export interface ScenarioRepeat {
  readonly runs: Record<TargetName, RunResult>;
  /** Largest RSS sample per sidecar pid during the take. */
  readonly loadMb: Map<number, number>;
}

/** The figures a table read: checks against targets, and information without one. */
export interface TableFigures {
  readonly checks: Check[];
  readonly info: Figure[];
}

/** A scenario's table: `ran` the targets that took part, `peers` those of them besides HAProxy. */
export function reportScenario(
  scenario: { readonly key: ScenarioKey; readonly title: string },
  gated: readonly GatedRepeat<ScenarioRepeat>[],
  ran: readonly TargetName[],
  peers: readonly PeerName[],
  hasFloor: boolean,
): TableFigures {
  /** This scenario's valid repeats: the only runs any figure below is taken from. */
  const results = validRuns(gated).map((r) => r.runs);
  const gate = summarizeGate(gated);
  const per = (target: TargetName, f: (r: RunResult) => number) =>
    ran.includes(target) ? results.map((rep) => f(rep[target])) : [];
  const ratioOf = (target: TargetName) => (f: (r: RunResult) => number) =>
    per(target, f).map((v, i) => v / f(results[i]!.haproxy));
  const satSys = (r: RunResult) => (r.sat!.sysMs! * 1_000) / r.sat!.requests;
  const rateCpu = (r: RunResult) => (r.rate!.cpuMs! * 1_000) / (r.rate!.load.completed + r.rate!.load.errors);
  const added = (f: (l: LoadResult) => number) => (rep: Record<TargetName, RunResult>, t: TargetName) =>
    f(rep[t].rate!.load) - f(rep.direct.rate!.load);
  const addedP50 = added((l) => l.p50Ms);
  const addedP99 = added((l) => l.p99Ms);
  /** The columns after HAProxy's: each peer's figure; after Sigil's ratio, each peer's ratio. */
  const table = new Table([
    '',
    'direct',
    'Sigil',
    'floor',
    'HAProxy',
    ...peers.map((t) => PEER_LABELS[t]),
    'Sigil/HAProxy',
    '(range)',
    'floor/HAProxy',
    ...peers.map((t) => `${PEER_LABELS[t]}/HAProxy`),
  ]);
  /** Each target's runs of one measure (direct only where it means something). */
  const valuesOf = (f: (r: RunResult) => number, withDirect = false) =>
    Object.fromEntries(ALL_TARGETS.map((t) => [t, t === 'direct' && !withDirect ? [] : per(t, f)])) as Record<
      TargetName,
      number[]
    >;
  const ratiosOf = (f: (r: RunResult) => number) =>
    Object.fromEntries(ALL_TARGETS.map((t) => [t, ratioOf(t)(f)])) as Partial<Record<TargetName, number[]>>;
  /** One row: each target's median, then Sigil's ratio to HAProxy (median, range), the floor's and the peers'. */
  const row = (
    name: string,
    values: Partial<Record<TargetName, number[]>>,
    ratios: Partial<Record<TargetName, number[]>> | null,
    digits = 0,
  ) => {
    const cell = (t: TargetName) => (values[t]?.length ? fmt(median(values[t]), digits) : '');
    const ratioCell = (t: TargetName) => (ratios?.[t]?.length ? fmtRatio(ratios[t]).median : '');
    const sigil = ratios?.sigil ? fmtRatio(ratios.sigil) : null;
    table.add([
      name,
      cell('direct'),
      cell('sigil'),
      cell('floor'),
      cell('haproxy'),
      ...peers.map(cell),
      sigil?.median ?? '',
      sigil?.spread ?? '',
      ratioCell('floor'),
      ...peers.map(ratioCell),
    ]);
  };
  row('throughput saturated (req/s)', valuesOf(throughput, true), ratiosOf(throughput));
  row('CPU µs/request saturated (pair)', valuesOf(satCpu), ratiosOf(satCpu), 1);
  row('  of which kernel (system time)', valuesOf(satSys), ratiosOf(satSys), 1);
  row('CPU µs/request at 1k req/s (pair)', valuesOf(rateCpu), ratiosOf(rateCpu), 1);
  for (const side of SIDES) {
    const f = rateSideCpuUs(side);
    row(`  ${SIDE_LABEL[side]}`, valuesOf(f), ratiosOf(f), 1);
  }
  for (const [name, f] of [
    ['p50', (l: LoadResult) => l.p50Ms],
    ['p99', (l: LoadResult) => l.p99Ms],
  ] as const) {
    row(
      `${name} latency at 1k req/s (ms)`,
      valuesOf((r) => f(r.rate!.load), true),
      null,
      3,
    );
    const addedOf = name === 'p50' ? addedP50 : addedP99;
    const addedBy = (t: TargetName) => (ran.includes(t) ? results.map((rep) => addedOf(rep, t)) : []);
    const haproxyAdded = addedBy('haproxy');
    // A ratio of near-zero additions says nothing.
    const overHaproxy = (t: TargetName) =>
      addedBy(t).map((v, i) => (haproxyAdded[i]! > 0.005 ? v / haproxyAdded[i]! : Number.NaN));
    row(
      `  added ${name} over direct (ms)`,
      Object.fromEntries(ALL_TARGETS.filter((t) => t !== 'direct').map((t) => [t, addedBy(t)])),
      Object.fromEntries(['sigil', ...peers].map((t) => [t, overHaproxy(t as TargetName)])),
      3,
    );
  }
  const runs: ScenarioRuns = {
    key: scenario.key,
    repeats: results,
    hasFloor,
    gate,
  };
  const errorsCell = (t: TargetName) => (ran.includes(t) ? fmt(errorsOf(runs, t)) : '');
  table.add([
    'failed requests (valid repeats)',
    errorsCell('direct'),
    errorsCell('sigil'),
    errorsCell('floor'),
    errorsCell('haproxy'),
    ...peers.map(errorsCell),
    '',
    '',
    '',
    ...peers.map(() => ''),
  ]);
  log('');
  log(`${scenario.title}: ${gateLine(gate)}`);
  table.print();
  log(`reference at 1k req/s, per sidecar: ${ISTIO_REFERENCE}`);

  const figures = scenarioFigures(runs);
  return { checks: figures.checks, info: [...figures.info, ...peerFigures(runs, peers)] };
}

/** The memory readings of a run, by sidecar pid. */
export interface MemoryReadings {
  readonly sidecars: {
    readonly sigilOut: BenchProc;
    readonly sigilIn: BenchProc;
    readonly haproxyOut: BenchProc;
    readonly haproxyIn: BenchProc;
  };
  readonly peerPairs: readonly PeerPair[];
  readonly startMb: Map<number, number>;
  readonly idleMb: Map<number, number>;
  /** Largest RSS sample per pid of each valid repeat, every scenario's. */
  readonly loadMb: readonly Map<number, number>[];
  readonly peakMb: Map<number, number>;
  /** Every scenario's repeats, valid or not: the gate line of memory under load. */
  readonly allGated: readonly GatedRepeat<ScenarioRepeat>[];
}

/** The memory table: Sigil's and HAProxy's sidecars side by side, then the peers'. */
export function reportMemory({
  sidecars,
  peerPairs,
  startMb,
  idleMb,
  loadMb,
  peakMb,
  allGated,
}: MemoryReadings): TableFigures {
  const checks: Check[] = [];
  const info: Figure[] = [];
  log('');
  log(
    'Memory per sidecar, VmRSS in MB (10^6 bytes): at start (no traffic yet); idle = after warm-up, settled; ' +
      'load = largest 100 ms sample of a valid repeat of a scenario, median; peak = VmHWM',
  );
  /** Memory under load is read from every scenario's valid repeats alike. */
  const memGate = gateLine(summarizeGate(allGated));
  const mem = new Table([
    '',
    'Sigil start',
    'HAProxy start',
    'Sigil idle',
    'HAProxy idle',
    'ratio',
    'Sigil load',
    'HAProxy load',
    'ratio',
    'Sigil peak',
    'HAProxy peak',
    ...peerPairs.flatMap((p) => [`${PEER_LABELS[p.name]} idle`, `${PEER_LABELS[p.name]} load`]),
  ]);
  const loadMbOf = (pid: number) => median(loadMb.map((m) => m.get(pid) ?? Number.NaN));
  for (const [label, sigil, haproxy, side] of [
    ['client sidecar (outbound)', sidecars.sigilOut, sidecars.haproxyOut, 'outbound'],
    ['server sidecar (inbound)', sidecars.sigilIn, sidecars.haproxyIn, 'inbound'],
  ] as const) {
    const idleS = idleMb.get(sigil.pid)!;
    const idleH = idleMb.get(haproxy.pid)!;
    const loadS = median(loadMb.map((m) => m.get(sigil.pid) ?? Number.NaN));
    const loadH = median(loadMb.map((m) => m.get(haproxy.pid) ?? Number.NaN));
    mem.add([
      label,
      fmt(startMb.get(sigil.pid)!, 1),
      fmt(startMb.get(haproxy.pid)!, 1),
      fmt(idleS, 1),
      fmt(idleH, 1),
      fmtTimes(idleS / idleH),
      fmt(loadS, 1),
      fmt(loadH, 1),
      fmtTimes(loadS / loadH),
      fmt(peakMb.get(sigil.pid)!, 1),
      fmt(peakMb.get(haproxy.pid)!, 1),
      ...peerPairs.flatMap((p) => [fmt(idleMb.get(p[side].pid)!, 1), fmt(loadMbOf(p[side].pid), 1)]),
    ]);
    info.push(
      ...peerMemoryFigures(
        label,
        peerPairs.map((p) => ({
          name: p.name,
          idleMb: idleMb.get(p[side].pid)!,
          loadMb: loadMbOf(p[side].pid),
        })),
        { idleMb: idleH, loadMb: loadH },
      ),
    );
    checks.push({
      name: `RSS idle, Sigil ${label}`,
      value: `${fmt(idleS, 1)} MB`,
      target: `≤ ${TARGETS.rssIdleMb} MB`,
      source: SOURCES.rssIdleMb,
      reference: `HAProxy ${fmt(idleH, 1)} MB; Sigil at start ${fmt(startMb.get(sigil.pid)!, 1)} MB`,
      pass: idleS <= TARGETS.rssIdleMb,
    });
    const anyValid = loadMb.length > 0;
    checks.push({
      name: `RSS under load, Sigil ${label}`,
      value: anyValid ? `${fmt(loadS, 1)} MB` : memGate,
      repeats: anyValid ? memGate : undefined,
      range: rangeOf(
        loadMb.map((m) => m.get(sigil.pid) ?? Number.NaN),
        (v) => `${fmt(v, 1)} MB`,
      ),
      target: `≤ ${TARGETS.rssLoadMb} MB`,
      source: SOURCES.rssLoadMb,
      reference: anyValid ? `HAProxy ${fmt(loadH, 1)} MB` : undefined,
      pass: anyValid && loadS <= TARGETS.rssLoadMb,
    });
  }
  mem.print();
  return { checks, info };
}
