// The fault half of bench:proxy's resilience scenario (proxy-resilience.ts): which runs, driving them
// (proxy-fault-load.ts against proxy-fault-backend.ts through the client sidecar) and their report.
// Amplification is checked against what the retry budget promises, success against the 99%.
import type { FaultStats } from './proxy-fault-backend.js';
import { type FaultLoadResult, runFaultLoad } from './proxy-fault-load.js';
import { type Check, fmt, log, Table } from './proxy-report.js';
import type { BenchServiceSettings, FaultBackend } from './proxy-resilience-setup.js';

/** Issue 11: with retries on, a service failing 30% of requests still answers 99% of them. */
const MIN_SUCCESS_AT_30 = 0.99;
/**
 * The retry budget of the config spec's defaults, which the "retries on" runs leave alone: retries
 * up to 20% of the requests of the last 10 s, plus 10 a second whatever the traffic.
 */
const BUDGET = { ratio: 0.2, minPerSecond: 10, windowS: 10 } as const;
/**
 * The fault runs' default rate. The failing app fails every request of its evenly spread share, so
 * a retry succeeds unless another failing slot comes up first: at 100 req/s a retry backing off
 * 0-25 ms lands one to three requests later and mostly succeeds; at 200 req/s it lands up to six
 * later and fails about as often as a first try, which caps 3 tries at ~97% success however large
 * the budget. At 5 s the budget's floor (100 retries a window) also covers a fifth of the requests,
 * so the 99% target is reachable within the bound it is checked against.
 */
export const FAULT_RATE_PER_S = 100;
/** Rounding at a few hundred requests: the brief's "small slack" on the amplification bounds. */
const AMPLIFICATION_SLACK = 0.02;

export interface FaultRun {
  readonly name: string;
  readonly label: string;
  readonly failPercent: number;
  readonly settings: BenchServiceSettings;
}

/**
 * Each run has a service and an endpoint (inbound listener) of its own, so one run's ejection or spent
 * budget never carries into the next. The last run is not in the brief's four: with one endpoint the
 * defaults eject it after 5 failures and the budget is never tested, so it turns ejection off.
 */
export const FAULT_RUNS: readonly FaultRun[] = [
  { name: 'f30off', label: '30% 503, retries off', failPercent: 30, settings: { maxAttempts: 1 } },
  { name: 'f30on', label: '30% 503, retries on (defaults)', failPercent: 30, settings: {} },
  { name: 'f100off', label: '100% 503, retries off', failPercent: 100, settings: { maxAttempts: 1 } },
  { name: 'f100on', label: '100% 503, retries on (defaults)', failPercent: 100, settings: {} },
  {
    name: 'f100budget',
    label: '100% 503, retries on, no ejection (budget alone)',
    failPercent: 100,
    settings: { outlierDetection: false },
  },
];

export interface FaultOutcome {
  readonly run: FaultRun;
  readonly client: FaultLoadResult;
  readonly app: FaultStats;
}

/** Drives each run in turn: the app's failing share set (its counters reset), then the load. */
export async function runFaults(
  app: FaultBackend,
  listenPorts: readonly number[],
  ratePerS: number,
  seconds: number,
): Promise<FaultOutcome[]> {
  const outcomes: FaultOutcome[] = [];
  for (const [i, run] of FAULT_RUNS.entries()) {
    await app.set(run.failPercent);
    const client = await runFaultLoad(listenPorts[i]!, ratePerS, seconds * 1_000);
    outcomes.push({ run, client, app: await app.stats() });
  }
  return outcomes;
}

/** Prints the runs' table and each run's answers; returns the checks. */
export function reportFaults(faults: readonly FaultOutcome[], ratePerS: number, seconds: number): Check[] {
  log('');
  log(
    `Resilience, faults: the app answers 503 to an evenly spread share of requests (a counter); GET / at ${fmt(ratePerS)} req/s ` +
      `for ${seconds} s per run through the client sidecar, one service and endpoint per run. ` +
      'amplification = requests the app saw ÷ requests the client sent; retried = requests the app saw with x-sigil-attempt ≥ 2.',
  );
  const table = new Table([
    'run',
    'client req',
    'success',
    'app req',
    'retried',
    'amplification',
    'p50 ms',
    'p99 ms',
  ]);
  for (const f of faults) {
    table.add([
      f.run.label,
      fmt(f.client.sent),
      `${((100 * f.client.succeeded) / f.client.sent).toFixed(1)}%`,
      fmt(f.app.requests),
      fmt(f.app.retries),
      (f.app.requests / f.client.sent).toFixed(3),
      fmt(f.client.p50Ms, 1),
      fmt(f.client.p99Ms, 1),
    ]);
  }
  table.print();
  for (const f of faults) {
    const answers = [...f.client.outcomes]
      .sort((a, b) => b[1] - a[1])
      .map(([what, n]) => `${what}: ${fmt(n)}`);
    log(`  ${f.run.label}: ${answers.join(', ')}`);
  }

  const checks: Check[] = [];
  for (const f of faults) {
    const amplification = f.app.requests / f.client.sent;
    const retriesOn = f.run.settings.maxAttempts === undefined;
    if (!retriesOn) {
      // max_attempts 1: every request is tried once; more would be retries the config forbids.
      checks.push({
        name: `faults: ${f.run.label}, amplification`,
        value: amplification.toFixed(3),
        target: '≤ 1',
        pass: f.app.requests <= f.client.sent,
      });
      continue;
    }
    // The budget lets through `ratio` of the requests plus the floor's retries of one window: all of
    // them when the run is shorter than the window, so the floor's share is that over the run.
    const floorRetries = BUDGET.minPerSecond * Math.max(BUDGET.windowS, seconds);
    const bound = 1 + BUDGET.ratio + floorRetries / f.client.sent + AMPLIFICATION_SLACK;
    checks.push({
      name: `faults: ${f.run.label}, amplification`,
      value: amplification.toFixed(3),
      target: `≤ ${bound.toFixed(2)} (1 + ${BUDGET.ratio} + ${floorRetries}/${f.client.sent} + ${AMPLIFICATION_SLACK})`,
      pass: amplification <= bound,
    });
    if (f.run.failPercent === 30) {
      const success = f.client.succeeded / f.client.sent;
      checks.push({
        name: `faults: ${f.run.label}, client success`,
        value: `${(100 * success).toFixed(1)}%`,
        target: `≥ ${MIN_SUCCESS_AT_30 * 100}%`,
        pass: success >= MIN_SUCCESS_AT_30,
      });
    }
  }
  return checks;
}
