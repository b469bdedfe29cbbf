// Load-gated repeats for bench:proxy (issue 14). On this shared 2-core machine other tenants' load
// inflates a Node pair's CPU per request far more than HAProxy's (130 against 294 µs for the same pair,
// quiet and busy), so a repeat taken under load is not a figure: each repeat measures the other load
// while it runs; above --max-load cores the bench waits (bounded) for quiet and takes it again, at most
// --retries times, then counts it invalid. Figures are medians and ranges over valid repeats only, and
// say how many there were and what load they saw. Deciding and formatting are pure; the loop takes its
// clock and load probe injected. This does not make a busy machine quiet: it refuses to judge on one.
import type { Clock } from '../src/spiffe/clock.js';

/** Default --max-load: issue 14's "about 0.25 cores" of others' CPU during a repeat. */
export const DEFAULT_MAX_LOAD_CORES = 0.25;
/** Default --retries: takes of one repeat after the first, before it is counted invalid. */
export const DEFAULT_RETRIES = 3;
/** One quiet check samples /proc/stat this long: a shorter one reads a single build step's burst. */
export const QUIET_SAMPLE_MS = 1_000;
/** The longest wait for quiet before a retake; the retake then runs anyway and is judged like any other. */
export const QUIET_WAIT_MS = 30_000;
/** Progress while waiting, at most this often: one line per 1 s sample buried the bench's own output. */
export const QUIET_LOG_EVERY_MS = 5_000;

export interface GateOptions {
  /** Others' CPU, in cores, above which a repeat is not a figure (--max-load). */
  readonly maxLoadCores: number;
  /** Retakes after the first take (--retries). */
  readonly retries: number;
}

export type GateDecision = 'valid' | 'retake' | 'invalid';

/**
 * What to do with a take of a repeat that saw `loadCores` of other load; `attempt` is 0 for the first
 * take. An unmeasurable load (NaN) is not quiet.
 */
export function gateDecision(loadCores: number, attempt: number, options: GateOptions): GateDecision {
  if (loadCores <= options.maxLoadCores) return 'valid';
  return attempt < options.retries ? 'retake' : 'invalid';
}

/** One repeat after gating: the run kept if a take was quiet enough, and the load of every take. */
export interface GatedRepeat<T> {
  readonly valid: boolean;
  /** The quiet take's run; absent when the repeat is invalid. */
  readonly value?: T;
  /** Other load of each take, in cores, in order: the last is the kept one's when valid. */
  readonly loadsCores: readonly number[];
}

/** How the gate measures: others' load from a start mark, and the time to wait by. */
export interface GateProbe {
  /** Starts counting others' CPU; the returned function gives the cores' worth since (startMachineLoad). */
  startLoad(): () => number;
  readonly clock: Clock;
}

const cores = (v: number) => (Number.isFinite(v) ? Math.max(0, v).toFixed(2) : '?');

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}

/**
 * Samples others' load for QUIET_SAMPLE_MS at a time until it is at most `maxLoadCores` or
 * `waitMs` has passed, logging a busy sample every QUIET_LOG_EVERY_MS; returns the last sample.
 */
export async function waitForQuiet(
  options: GateOptions,
  probe: GateProbe,
  log: (line: string) => void,
  waitMs = QUIET_WAIT_MS,
): Promise<number> {
  const deadlineMs = probe.clock.nowMs() + waitMs;
  let loggedAtMs = Number.NEGATIVE_INFINITY;
  for (;;) {
    const loadSince = probe.startLoad();
    await sleep(probe.clock, QUIET_SAMPLE_MS);
    const load = loadSince();
    if (load <= options.maxLoadCores) return load;
    if (probe.clock.nowMs() >= deadlineMs) {
      log(
        `  machine still busy after ${waitMs / 1_000} s (other load ${cores(load)} cores): taking the repeat again anyway`,
      );
      return load;
    }
    if (probe.clock.nowMs() - loggedAtMs >= QUIET_LOG_EVERY_MS) {
      loggedAtMs = probe.clock.nowMs();
      log(`  waiting for the machine to be quiet: other load ${cores(load)} cores`);
    }
  }
}

/**
 * Takes `measure` until a take sees at most `maxLoadCores` of other load, waiting for quiet before
 * each retake; after `retries` retakes the repeat is invalid (logged, and counted by summarizeGate).
 */
export async function runGated<T>(
  label: string,
  measure: () => Promise<T>,
  options: GateOptions,
  probe: GateProbe,
  log: (line: string) => void,
): Promise<GatedRepeat<T>> {
  const loadsCores: number[] = [];
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await waitForQuiet(options, probe, log);
    const loadSince = probe.startLoad();
    const value = await measure();
    const load = loadSince();
    loadsCores.push(load);
    const decision = gateDecision(load, attempt, options);
    if (decision === 'valid') return { valid: true, value, loadsCores };
    if (decision === 'invalid') {
      log(
        `${label}: INVALID, not a figure: other load ${loadsCores.map(cores).join(', ')} cores in its ${loadsCores.length} take(s), over --max-load ${options.maxLoadCores}`,
      );
      return { valid: false, loadsCores };
    }
    log(
      `${label}: other load ${cores(load)} cores > --max-load ${options.maxLoadCores}: not a figure, taking it again (retake ${attempt + 1} of ${options.retries})`,
    );
  }
}

/** What the gate did over one scenario's repeats: the line every figure of that scenario carries. */
export interface GateSummary {
  readonly repeats: number;
  readonly valid: number;
  /** Takes beyond the first, over all repeats. */
  readonly retakes: number;
  /** Other load of the kept take of each valid repeat. */
  readonly validLoadsCores: readonly number[];
  /** Other load of every take, valid or not. */
  readonly allLoadsCores: readonly number[];
}

export function summarizeGate(repeats: ReadonlyArray<GatedRepeat<unknown>>): GateSummary {
  const valid = repeats.filter((r) => r.valid);
  return {
    repeats: repeats.length,
    valid: valid.length,
    retakes: repeats.reduce((sum, r) => sum + r.loadsCores.length - 1, 0),
    validLoadsCores: valid.map((r) => r.loadsCores[r.loadsCores.length - 1]!),
    allLoadsCores: repeats.flatMap((r) => r.loadsCores),
  };
}

/** The runs of valid repeats, in order: the only ones any figure is taken from. */
export function validRuns<T>(repeats: ReadonlyArray<GatedRepeat<T>>): T[] {
  return repeats.filter((r) => r.valid).map((r) => r.value as T);
}

/** `0.02–0.11`, or one value when all are equal. */
function coresRange(values: readonly number[]): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return '?';
  const low = cores(Math.min(...finite));
  const high = cores(Math.max(...finite));
  return low === high ? low : `${low}–${high}`;
}

/**
 * "valid 3 of 3 (1 retake), other load 0.02–0.11 cores", or when nothing is valid
 * "no valid repeat: other load 0.60–0.90 cores" (every take's load).
 */
export function gateLine(s: GateSummary): string {
  if (s.valid === 0) return `no valid repeat: other load ${coresRange(s.allLoadsCores)} cores`;
  const retaken = s.retakes > 0 ? ` (${s.retakes} retake${s.retakes === 1 ? '' : 's'})` : '';
  return `valid ${s.valid} of ${s.repeats}${retaken}, other load ${coresRange(s.validLoadsCores)} cores`;
}
