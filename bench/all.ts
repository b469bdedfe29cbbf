// `npm run bench`: every benchmark in one sitting, one after another on a machine checked quiet
// before each, then bench/RESULTS.md (figures, targets and their issues, references measured in the
// same run, verdicts, the machine and the load seen) and bench/latency-vs-rate.svg. Each bench runs
// as its own process exactly as `npm run bench:<name>` would, with `--results FILE` so it hands over
// its figures as JSON (results.ts); nothing here measures anything itself but the machine's load.
// `--quick` runs every bench short and once (about 5 minutes): a smoke run, not figures to keep.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderLatencySvg } from './latency-svg.js';
import { startMachineLoad } from './proxy-measure.js';
import { readResults } from './results.js';
import { type Machine, renderResultsMd, type Sitting, type StepOutcome, verdictOf } from './results-md.js';
import { REPO_ROOT } from './workload-processes.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PLOT_FILE = 'latency-vs-rate.svg';
/** Other processes' CPU above this (in cores) makes the machine "busy": wait a little for it to settle. */
const QUIET_CORES = 0.25;
/** How long one quiet check samples /proc/stat. */
const QUIET_SAMPLE_S = { full: 3, quick: 1 } as const;
/** How long to wait, at most, for a busy machine to settle before a bench; it runs anyway after. */
const QUIET_WAIT_S = { full: 30, quick: 0 } as const;
/** A step taking this many times its estimate (plus a minute) is stopped: something hangs. */
const TIMEOUT_FACTOR = 3;
const STOP_GRACE_MS = 20_000;

interface Step {
  readonly key: string;
  readonly title: string;
  /** The package.json script that runs this bench alone. */
  readonly npmScript: string;
  readonly script: string;
  readonly args: { readonly full: readonly string[]; readonly quick: readonly string[] };
  /** Seconds on the project's 2-core machine, quiet; measured, not derived. */
  readonly estimateS: { readonly full: number; readonly quick: number };
  /**
   * Seconds a load-gated bench (bench:proxy, proxy-repeats.ts) may add at worst on a busy machine:
   * every repeat retaken --retries times after a full wait for quiet. Added to the step's timeout so
   * that a bench only waiting for quiet is not stopped as hung.
   */
  readonly gateWorstS?: { readonly full: number; readonly quick: number };
}

const PROXY_SCENARIOS = 'h1,tcp,h2,resilience,traffic,sweep';

/** In this order: the short, single-process benches first, the long proxy one, then rotation. */
const STEPS: readonly Step[] = [
  {
    key: 'ca',
    title: 'CA issuance',
    npmScript: 'bench:ca',
    script: 'ca.js',
    args: { full: [], quick: ['--quick'] },
    estimateS: { full: 25, quick: 10 },
  },
  {
    key: 'sync',
    title: 'Server sync at scale',
    npmScript: 'bench:sync',
    script: 'sync-entries.js',
    args: { full: [], quick: [] },
    estimateS: { full: 30, quick: 30 },
  },
  {
    key: 'workload',
    title: 'Workload API fan-out',
    npmScript: 'bench:workload',
    script: 'workload.js',
    args: { full: ['--skip-sync'], quick: ['--skip-sync'] },
    estimateS: { full: 35, quick: 35 },
  },
  {
    key: 'svid-store',
    title: "Agent's SVID store",
    npmScript: 'bench:svid-store',
    script: 'svid-store.js',
    args: { full: [], quick: ['--quick'] },
    estimateS: { full: 30, quick: 10 },
  },
  {
    key: 'proxy',
    title: 'Sidecar proxy against HAProxy and the Node floor',
    npmScript: 'bench:proxy',
    script: 'proxy.js',
    args: {
      full: ['--only', PROXY_SCENARIOS, '--repeats', '3', '--sat-seconds', '3', '--rate-seconds', '3'],
      quick: [
        '--only',
        PROXY_SCENARIOS,
        '--repeats',
        '1',
        '--sat-seconds',
        '1',
        '--rate-seconds',
        '1',
        '--fault-seconds',
        '2',
        '--sweep-seconds',
        '1',
      ],
    },
    estimateS: { full: 670, quick: 180 },
    // 9 scenario repeats (3 × h1, tcp, h2) of ~33 s (quick: 3 of ~17 s), each retaken 3 times after
    // up to 30 s of waiting.
    gateWorstS: { full: 9 * 3 * (33 + 30), quick: 3 * 3 * (17 + 30) },
  },
  {
    key: 'rotation',
    title: 'SVID rotation under load',
    npmScript: 'bench:rotation',
    script: 'rotation.js',
    args: { full: [], quick: ['--quick'] },
    estimateS: { full: 40, quick: 25 },
  },
];

interface Flags {
  readonly quick: boolean;
  readonly only: readonly string[];
  readonly outDir: string;
  readonly json: boolean;
}

const USAGE = `Usage: npm run bench [-- FLAGS]

Runs every benchmark one after another (${STEPS.map((s) => s.key).join(', ')}), checking the machine is quiet
before each, and writes bench/RESULTS.md and bench/${PLOT_FILE}. About ${Math.round(totalEstimateS(false) / 60)} minutes.
Exit status: 0 every target met, 1 a target missed, 2 a bench failed, 130 interrupted.

Flags:
  --quick          every bench short and once (about ${Math.round(totalEstimateS(true) / 60)} minutes): a smoke run, figures not to keep
  --only LIST      these benches only, comma-separated (${STEPS.map((s) => s.key).join(',')})
  --out DIR        write RESULTS.md and the plot into DIR (default: bench/ of this checkout)
  --output json    print the sitting as JSON on stdout (the benches' own output goes to stderr)
  -h, --help       this help
`;

/** The command that runs `step` alone the way this sitting does. */
function commandOf(step: Step, mode: 'full' | 'quick'): string {
  const args = step.args[mode];
  return `npm run ${step.npmScript}${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
}

function totalEstimateS(quick: boolean, steps: readonly Step[] = STEPS): number {
  const mode = quick ? 'quick' : 'full';
  return steps.reduce((sum, s) => sum + s.estimateS[mode] + QUIET_SAMPLE_S[mode], 0);
}

function parseFlags(argv: readonly string[]): Flags {
  const value = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    if (at < 0) return undefined;
    const v = argv[at + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name}: expected a value`);
    return v;
  };
  const known = new Set(['--quick', '--only', '--out', '--output', '--help', '-h']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!known.has(arg)) throw new Error(`unknown flag "${arg}" (see --help)`);
    if (['--only', '--out', '--output'].includes(arg)) i++;
  }
  const only = (value('--only') ?? STEPS.map((s) => s.key).join(',')).split(',').map((s) => s.trim());
  for (const key of only)
    if (!STEPS.some((s) => s.key === key))
      throw new Error(`--only: unknown bench "${key}" (one of ${STEPS.map((s) => s.key).join(', ')})`);
  const output = value('--output');
  if (output !== undefined && output !== 'json') throw new Error(`--output: only "json" (got "${output}")`);
  return {
    quick: argv.includes('--quick'),
    only,
    outDir: path.resolve(value('--out') ?? path.join(REPO_ROOT, 'bench')),
    json: output === 'json',
  };
}

function machine(): Machine {
  let os = `Linux ${release()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (pretty) os = `${pretty}, kernel ${release()}`;
  } catch {
    // No os-release (not every distribution has one): the kernel release alone names the system.
  }
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    ramGiB: totalmem() / 1024 ** 3,
    node: process.version,
    os,
  };
}

const mmss = (s: number) => `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;

class Runner {
  private readonly startedMs = Date.now();
  private child: ChildProcess | undefined;
  private interrupted = false;

  constructor(
    private readonly flags: Flags,
    private readonly say: (line: string) => void,
    private readonly echo: (chunk: string) => void,
  ) {}

  elapsedS(): number {
    return (Date.now() - this.startedMs) / 1_000;
  }

  /** Samples other processes' CPU; when busy, waits (up to QUIET_WAIT_S) for it to settle. */
  async quietCheck(): Promise<number> {
    const mode = this.flags.quick ? 'quick' : 'full';
    const deadline = Date.now() + QUIET_WAIT_S[mode] * 1_000;
    for (;;) {
      const others = startMachineLoad([]);
      await new Promise((resolve) => setTimeout(resolve, QUIET_SAMPLE_S[mode] * 1_000));
      const cores = Math.max(0, others());
      if (cores <= QUIET_CORES || Date.now() >= deadline || this.interrupted) {
        this.say(
          `  machine: ${cores.toFixed(2)} of ${availableParallelism()} cores used by other processes` +
            (cores > QUIET_CORES
              ? ' (busy: figures will be noisier; ratios within a repeat still compare)'
              : ''),
        );
        return cores;
      }
      this.say(`  machine busy (${cores.toFixed(2)} cores of other load); waiting for it to settle…`);
    }
  }

  /** Runs one bench to its end (or the timeout), its output echoed; its figures read back. */
  async run(step: Step, resultsFile: string): Promise<Omit<StepOutcome, 'loadBefore'>> {
    const mode = this.flags.quick ? 'quick' : 'full';
    const startMs = Date.now();
    const timeoutMs = (step.estimateS[mode] * TIMEOUT_FACTOR + 60 + (step.gateWorstS?.[mode] ?? 0)) * 1_000;
    const child = spawn(
      process.execPath,
      [path.join(HERE, step.script), ...step.args[mode], '--results', resultsFile],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    let partial = '';
    const onData = (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.echo(`  │ ${line}\n`);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.stopChild();
    }, timeoutMs);
    const code = await new Promise<number | null>((resolve) => {
      child.once('error', () => resolve(null));
      child.once('exit', (c) => resolve(c));
    });
    clearTimeout(timer);
    if (partial) this.echo(`  │ ${partial}\n`);
    this.child = undefined;
    const durationS = (Date.now() - startMs) / 1_000;
    const base = { title: step.title, command: commandOf(step, mode), durationS };
    if (timedOut)
      return { ...base, error: `stopped after ${Math.round(timeoutMs / 1_000)} s (3x its estimate)` };
    if (this.interrupted) return { ...base, error: 'interrupted' };
    try {
      // Exit 1 means a target was missed: the figures say which. Anything else without figures failed.
      return { ...base, results: readResults(resultsFile) };
    } catch (err) {
      return {
        ...base,
        error: `exited with ${code} and wrote no figures (${(err as Error).message.split('\n')[0]})`,
      };
    }
  }

  /** SIGTERM to the running bench (each cleans up its processes and temp dirs), SIGKILL after a grace. */
  stopChild(): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS).unref();
  }

  get isInterrupted(): boolean {
    return this.interrupted;
  }

  interrupt(): void {
    this.interrupted = true;
    this.stopChild();
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const flags = parseFlags(argv);
  // With --output json, stdout carries only the JSON; progress and the benches' output go to stderr.
  const progress = flags.json ? process.stderr : process.stdout;
  const say = (line: string) => progress.write(`${line}\n`);
  const runner = new Runner(flags, say, (chunk) => progress.write(chunk));
  const steps = STEPS.filter((s) => flags.only.includes(s.key));
  const mode = flags.quick ? 'quick' : 'full';
  const startedIso = new Date().toISOString();
  say(
    `npm run bench${flags.quick ? ' --quick (smoke run: short, one repeat)' : ''}: ${steps.map((s) => s.key).join(', ')}; ` +
      `about ${mmss(totalEstimateS(flags.quick, steps))} on a quiet 2-core machine`,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`\n${signal}: stopping the running bench (it removes its processes and temp dirs)`);
      runner.interrupt();
    });
  }
  const scratch = mkdtempSync(path.join(tmpdir(), 'sigil-bench-all-'));
  const outcomes: StepOutcome[] = [];
  try {
    for (const [i, step] of steps.entries()) {
      const left = totalEstimateS(flags.quick, steps.slice(i));
      say(
        `\n[${i + 1}/${steps.length}] ${step.title}: ${commandOf(step, mode)} — ` +
          `elapsed ${mmss(runner.elapsedS())}, about ${mmss(left)} to go`,
      );
      const loadBefore = await runner.quietCheck();
      const outcome = await runner.run(step, path.join(scratch, `${step.key}.json`));
      outcomes.push({ ...outcome, loadBefore });
      const figures = outcome.results?.figures ?? [];
      const missed = figures.filter((f) => verdictOf(f) === 'missed').length;
      say(
        `[${i + 1}/${steps.length}] ${step.title}: ${outcome.error ?? `${figures.length} figures, ${missed} target(s) missed`} ` +
          `(${outcome.durationS.toFixed(0)} s, estimate ${step.estimateS[mode]} s)`,
      );
      if (runner.isInterrupted) break;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  if (runner.isInterrupted) return 130;

  const curves = outcomes.flatMap((o) => o.results?.curves ?? []);
  const sitting: Sitting = {
    startedIso,
    quick: flags.quick,
    durationS: runner.elapsedS(),
    machine: machine(),
    steps: outcomes,
    plotFile: curves.length > 0 ? PLOT_FILE : undefined,
  };
  const resultsPath = path.join(flags.outDir, 'RESULTS.md');
  writeFileSync(resultsPath, renderResultsMd(sitting));
  if (curves.length > 0) {
    writeFileSync(
      path.join(flags.outDir, PLOT_FILE),
      renderLatencySvg(curves, `Latency against request rate, HTTP/1.1${flags.quick ? ' (quick run)' : ''}`),
    );
  }
  const figures = outcomes.flatMap((o) => o.results?.figures ?? []);
  const missed = figures.filter((f) => verdictOf(f) === 'missed');
  const failed = outcomes.filter((o) => o.error !== undefined);
  say(
    `\nwrote ${resultsPath}${curves.length > 0 ? ` and ${PLOT_FILE}` : ''} in ${mmss(runner.elapsedS())}: ` +
      `${figures.length - missed.length} figures met or informational, ${missed.length} target(s) missed` +
      (failed.length > 0
        ? `, ${failed.length} bench(es) failed: ${failed.map((o) => o.title).join(', ')}`
        : ''),
  );
  for (const f of missed)
    say(`  missed: ${f.name}: ${f.value} (target ${f.target}${f.source ? `, ${f.source}` : ''})`);
  if (flags.json) process.stdout.write(`${JSON.stringify(sitting, null, 2)}\n`);
  return failed.length > 0 ? 2 : missed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
