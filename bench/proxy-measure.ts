// Measuring for `npm run bench:proxy` and its scenarios: CPU and memory from /proc, saturation with
// wrk and h2load, the open-loop client process (proxy-load.ts) for fixed rates, and one-shot checks
// that a path answers before it is measured. Moved out of proxy.ts so proxy-resilience.ts shares them.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import type { LoadCommand, LoadReport, LoadResult } from './proxy-load.js';
import { type BenchProc, runCommand, spawnTracked } from './proxy-setup.js';

const LOAD_SCRIPT = fileURLToPath(new URL('./proxy-load.js', import.meta.url));
export const WRK_CONNECTIONS = 50;
export const H2LOAD_CONNECTIONS = 10;
export const H2LOAD_STREAMS = 10;
const RSS_SAMPLE_MS = 100;
/** The open-loop rate of the latency runs, and its unmeasured lead-in. */
export const RATE_PER_S = 1_000;
export const RATE_WARMUP_MS = 500;
/** Saturation per path before anything is measured: JIT, TLS sessions, pools. */
export const WARMUP_S = 2;
/**
 * Unmeasured saturation right before each measured one, for every target alike: pools and TLS
 * sessions idle out between repeats (~80 s apart), and without it a 4 s run also measures the
 * pool's first handshakes (50 of them) rather than the steady per-request cost it reports.
 */
export const PRIMING_S = 1;

export interface SatResult {
  readonly reqPerS: number;
  readonly requests: number;
  readonly errors: number;
  readonly cpuMs: number | null;
  /** The kernel's share of cpuMs (system time). */
  readonly sysMs: number | null;
}

// ---------------------------------------------------------------------------------------------
// /proc

const CLOCK_TICKS_PER_S = 100;

/** User and system CPU of `pids` so far (all their threads), in ms; 10 ms resolution. */
export function cpuOf(pids: readonly number[]): { userMs: number; sysMs: number } {
  let user = 0;
  let sys = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    user += Number(fields[11]);
    sys += Number(fields[12]);
  }
  return { userMs: (user * 1_000) / CLOCK_TICKS_PER_S, sysMs: (sys * 1_000) / CLOCK_TICKS_PER_S };
}

export function cpuMsOf(pids: readonly number[]): number {
  const { userMs, sysMs } = cpuOf(pids);
  return userMs + sysMs;
}

/** CPU the whole machine spent busy so far (user, nice, system, irq, softirq, steal; all cores), in ms. */
export function machineBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return ((user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 1_000) / CLOCK_TICKS_PER_S;
}

/** CPU of this bench and everything it started: its own, its reaped children's (wrk, h2load), and `pids`'. */
export function benchCpuMs(pids: readonly number[]): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime: fields 14 to 17.
  const selfTicks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  let others = 0;
  for (const pid of pids) {
    try {
      others += cpuMsOf([pid]);
    } catch {
      // Gone already: its time is in our cutime if it was our child.
    }
  }
  return (selfTicks * 1_000) / CLOCK_TICKS_PER_S + others;
}

/**
 * Starts counting the machine's busy CPU; the returned function gives the cores' worth of it spent
 * by others than this bench and `pids` since: the noise the figures measured meanwhile carry.
 */
export function startMachineLoad(pids: readonly number[]): () => number {
  const machineBefore = machineBusyMs();
  const oursBefore = benchCpuMs(pids);
  const fromMs = Date.now();
  return () =>
    (machineBusyMs() - machineBefore - (benchCpuMs(pids) - oursBefore)) / Math.max(1, Date.now() - fromMs);
}

/** VmRSS (or VmHWM, the peak) in MB (10^6 bytes). */
export function memMbOf(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
    return (kib * 1024) / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** Samples VmRSS of the sidecars every 100 ms; keeps the largest per pid since the last reset. */
export class RssSampler {
  private readonly max = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pids: readonly number[]) {}

  start(): void {
    this.timer = setInterval(() => this.sample(), RSS_SAMPLE_MS);
  }

  sample(): void {
    for (const pid of this.pids) {
      const mb = memMbOf(pid);
      if (Number.isFinite(mb)) this.max.set(pid, Math.max(this.max.get(pid) ?? 0, mb));
    }
  }

  /** The largest sample per pid since the previous call. */
  takeMax(): Map<number, number> {
    this.sample();
    const max = new Map(this.max);
    this.max.clear();
    return max;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Load

export async function runWrk(port: number, seconds: number): Promise<Omit<SatResult, 'cpuMs' | 'sysMs'>> {
  const res = await runCommand(
    'wrk',
    ['-t1', `-c${WRK_CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', `http://127.0.0.1:${port}/`],
    (seconds + 30) * 1_000,
  );
  const out = res.stdout;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
  const reqPerS = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  if (res.code !== 0 || !Number.isFinite(requests))
    throw new Error(`wrk failed (${res.code}):\n${out}${res.stderr}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return { requests, reqPerS, errors: non2xx + socketErrors };
}

export async function runH2load(port: number, seconds: number): Promise<Omit<SatResult, 'cpuMs' | 'sysMs'>> {
  const res = await runCommand(
    'h2load',
    [
      '-t1',
      `-c${H2LOAD_CONNECTIONS}`,
      `-m${H2LOAD_STREAMS}`,
      '-D',
      String(seconds),
      `http://127.0.0.1:${port}/`,
    ],
    (seconds + 30) * 1_000,
  );
  const out = res.stdout;
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(out);
  const counts =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  if (res.code !== 0 || !finished || !counts)
    throw new Error(`h2load failed (${res.code}):\n${out}${res.stderr}`);
  const non2xx = Number(
    /status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/
      .exec(out)
      ?.slice(1)
      .reduce((s, n) => s + Number(n), 0) ?? 0,
  );
  return {
    requests: Number(counts[3]),
    reqPerS: Number(finished[3]),
    errors: Number(counts[5]) + Number(counts[6]) + Number(counts[7]) + non2xx,
  };
}

/** The open-loop client process (proxy-load.ts), reused for every 1,000 req/s run. */
export class LoadClient {
  private readonly reports: LoadReport[] = [];
  private wake: (() => void) | null = null;

  constructor(private readonly proc: BenchProc) {
    proc.child.on('message', (report: LoadReport) => {
      this.reports.push(report);
      this.wake?.();
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  static start(): LoadClient {
    return new LoadClient(spawnTracked('load client', process.execPath, [LOAD_SCRIPT], { ipc: true }));
  }

  private async next(timeoutMs: number): Promise<LoadReport> {
    const deadline = Date.now() + timeoutMs;
    while (this.reports.length === 0) {
      if (this.proc.child.exitCode !== null) throw new Error(`load client exited:\n${this.proc.logs()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('load client: no report in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    const report = this.reports.shift()!;
    if (report.type === 'failed') throw new Error(`load client: ${report.message}`);
    return report;
  }

  /** Warm-up (not measured), then `onWarm()` (the caller samples CPU), then the measured phase. */
  async run(command: Omit<LoadCommand, 'type'>, onWarm: () => void): Promise<LoadResult> {
    this.proc.child.send({ type: 'run', ...command } satisfies LoadCommand);
    const warm = await this.next(command.warmupMs + 30_000);
    if (warm.type !== 'warm') throw new Error(`load client: expected warm, got ${warm.type}`);
    onWarm();
    this.proc.child.send({ type: 'go' });
    const done = await this.next(command.durationMs + 30_000);
    if (done.type !== 'done') throw new Error(`load client: expected done, got ${done.type}`);
    return done;
  }

  async close(): Promise<void> {
    if (this.proc.child.connected) this.proc.child.send({ type: 'close' });
    await this.proc.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Checks before measuring

/** One GET of `/`, as "STATUS BODY"; `hostHeader` replaces the default Host (127.0.0.1:PORT). */
export function getOnce(port: number, hostHeader?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers = hostHeader === undefined ? undefined : { host: hostHeader };
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export function getOnceH2(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({ ':path': '/' });
    let status = 0;
    let body = '';
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.on('data', (chunk) => {
      body += chunk;
    });
    // 'close' also follows a timeout or a reset, when 'end' never comes; the first settles it.
    const done = () => {
      session.close();
      resolve(`${status} ${body}`);
    };
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', reject);
    stream.setTimeout(5_000, () => stream.close());
  });
}
