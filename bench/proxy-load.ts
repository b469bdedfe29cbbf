// Open-loop, rate-limited load client for `npm run bench:proxy` (wrk2 and hey are not in Debian):
// sends requests at a fixed rate whatever the answers do, and records each request's latency from
// the moment it was handed to the socket layer until its response was complete. Runs in its own
// process (forked with IPC) so its CPU is not charged to the bench or to a sidecar.
//
// Protocol: the parent sends a LoadCommand; the child warms up at the rate (not recorded), reports
// `warm`, waits for `go` (the parent samples sidecar CPU in between), runs the measured phase, waits
// for the requests still in flight, and reports `done` with percentiles.
//   h1: HTTP/1.1 GET / through an undici Pool (keep-alive, no pipelining; as many connections as
//       requests in flight), legacy dispatch handler so no body stream is built per response.
//   h2: h2c GET / as streams on one HTTP/2 session (prior knowledge), as a gRPC client would.
// Options for bench/rotation.ts: `newConnectionEach` (h1: every request on a connection of its own,
// closed after it, so through a `tcp` listener each request is a new mTLS handshake) and `timeline`
// (each measured request's send time and latency, to read the latency around a rotation).
import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { type Dispatcher, Pool } from 'undici';

/** The Host the fixed-rate client sends (wrk sends 127.0.0.1:PORT): bench:proxy checks both answer. */
export const LOAD_CLIENT_HOST = 'bench';

export interface LoadCommand {
  readonly type: 'run';
  readonly protocol: 'h1' | 'h2';
  readonly port: number;
  readonly ratePerS: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** h1 only: close each connection after its request (undici `reset`). Default false. */
  readonly newConnectionEach?: boolean;
  /** Report every measured request in `timeline`. Default false. */
  readonly timeline?: boolean;
}

/** Per measured request, in send order: wall-clock send time (epoch ms) and latency (ms; -1 failed). */
export interface LoadTimeline {
  readonly sentAtMs: number[];
  readonly latencyMs: number[];
}

export interface LoadResult {
  readonly type: 'done';
  readonly sent: number;
  readonly completed: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** Requests not sent because too many were already in flight (a stalled target). */
  readonly dropped: number;
  readonly elapsedMs: number;
  /** Latency percentiles in milliseconds. */
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
  readonly timeline?: LoadTimeline;
}

export type LoadReport =
  | { readonly type: 'warm' }
  | LoadResult
  | { readonly type: 'failed'; message: string };

/** Beyond this many requests in flight the target is stalled; more would only measure our queue. */
const MAX_IN_FLIGHT = 2_000;
/** After the measured phase, requests still unanswered by then count as errors. */
const DRAIN_TIMEOUT_MS = 5_000;
const TICK_MS = 1;
/**
 * Like hey's and wrk2's fixed set of connections: an unbounded pool would open a connection per
 * request in flight whenever the target hiccups, turning a latency spike into a connection storm.
 */
const H1_CONNECTIONS = 50;

type Send = (done: (err: Error | null) => void) => void;

interface Target {
  readonly send: Send;
  close(): Promise<void>;
}

function h1Target(port: number, newConnectionEach: boolean): Target {
  const pool = new Pool(`http://127.0.0.1:${port}`, {
    connections: H1_CONNECTIONS,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
  });
  const options: Dispatcher.DispatchOptions = {
    path: '/',
    method: 'GET',
    headers: ['host', LOAD_CLIENT_HOST],
    reset: newConnectionEach,
  };
  return {
    send(done) {
      let isDone = false;
      const finish = (err: Error | null) => {
        if (isDone) return;
        isDone = true;
        done(err);
      };
      let status = 0;
      pool.dispatch(options, {
        onConnect() {},
        onHeaders(statusCode: number) {
          status = statusCode;
          return true;
        },
        onData() {
          return true;
        },
        onComplete() {
          finish(status === 200 ? null : new Error(`HTTP ${status}`));
        },
        onError(err: Error) {
          finish(err);
        },
      } as Dispatcher.DispatchHandler);
    },
    close: () => pool.destroy(),
  };
}

function h2Target(port: number): Target {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  // Failures surface on the streams; an unhandled session error would end the process instead.
  session.on('error', () => {});
  const headers = { ':path': '/', ':method': 'GET' };
  return {
    send(done) {
      let status = 0;
      let isDone = false;
      const finish = (err: Error | null) => {
        if (isDone) return;
        isDone = true;
        done(err);
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers, { endStream: true });
      } catch (err) {
        finish(err as Error);
        return;
      }
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.on('data', () => {});
      stream.on('end', () => finish(status === 200 ? null : new Error(`HTTP/2 ${status}`)));
      stream.on('error', (err) => finish(err));
      stream.on('close', () => finish(new Error(`stream closed (code ${stream.rstCode})`)));
    },
    close: () =>
      new Promise<void>((resolve) => {
        session.close(() => resolve());
        setTimeout(() => {
          session.destroy();
          resolve();
        }, 1_000).unref();
      }),
  };
}

/** Sends at `ratePerS` for `durationMs`; latencies (µs) go to `record` when given. */
async function runPhase(
  target: Target,
  ratePerS: number,
  durationMs: number,
  record: number[] | null,
  timeline: LoadTimeline | null = null,
): Promise<{ sent: number; completed: number; errors: number; firstError: string | null; dropped: number }> {
  const intervalMs = 1_000 / ratePerS;
  const startMs = performance.now();
  const total = Math.round((durationMs * ratePerS) / 1_000);
  let sent = 0;
  let completed = 0;
  let errors = 0;
  let dropped = 0;
  let inFlight = 0;
  let firstError: string | null = null;
  let wake: (() => void) | null = null;
  const sendOne = () => {
    const sentAtMs = performance.now();
    const slot = timeline ? timeline.sentAtMs.push(performance.timeOrigin + sentAtMs) - 1 : -1;
    timeline?.latencyMs.push(-1);
    inFlight++;
    sent++;
    target.send((err) => {
      inFlight--;
      if (err) {
        errors++;
        firstError ??= err.message;
      } else {
        completed++;
        record?.push((performance.now() - sentAtMs) * 1_000);
        if (timeline) timeline.latencyMs[slot] = performance.now() - sentAtMs;
      }
      if (inFlight === 0 && wake) wake();
    });
  };
  await new Promise<void>((resolve) => {
    let issued = 0;
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - startMs) / intervalMs) + 1);
      while (issued < due) {
        issued++;
        if (inFlight >= MAX_IN_FLIGHT) dropped++;
        else sendOne();
      }
      if (issued >= total) resolve();
      else setTimeout(tick, TICK_MS);
    };
    tick();
  });
  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    errors += inFlight;
    if (inFlight > 0) firstError ??= `${inFlight} requests unanswered after ${DRAIN_TIMEOUT_MS} ms`;
  }
  return { sent, completed, errors, firstError, dropped };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

async function run(command: LoadCommand, waitForGo: () => Promise<void>): Promise<LoadResult> {
  const target =
    command.protocol === 'h1'
      ? h1Target(command.port, command.newConnectionEach ?? false)
      : h2Target(command.port);
  try {
    await runPhase(target, command.ratePerS, command.warmupMs, null);
    send({ type: 'warm' });
    await waitForGo();
    const latenciesUs: number[] = [];
    const timeline = command.timeline ? { sentAtMs: [], latencyMs: [] } : null;
    const startMs = performance.now();
    const phase = await runPhase(target, command.ratePerS, command.durationMs, latenciesUs, timeline);
    const elapsedMs = performance.now() - startMs;
    const sorted = Float64Array.from(latenciesUs).sort();
    const sum = latenciesUs.reduce((a, b) => a + b, 0);
    return {
      type: 'done',
      ...phase,
      elapsedMs,
      p50Ms: percentile(sorted, 50) / 1_000,
      p90Ms: percentile(sorted, 90) / 1_000,
      p99Ms: percentile(sorted, 99) / 1_000,
      maxMs: (sorted[sorted.length - 1] ?? Number.NaN) / 1_000,
      meanMs: sorted.length === 0 ? Number.NaN : sum / sorted.length / 1_000,
      ...(timeline ? { timeline } : {}),
    };
  } finally {
    await target.close();
  }
}

function send(report: LoadReport): void {
  process.send?.(report);
}

if (process.send) {
  let go: (() => void) | null = null;
  let goReceived = false;
  process.on('message', (message: LoadCommand | { type: 'go' } | { type: 'close' }) => {
    if (message.type === 'go') {
      goReceived = true;
      go?.();
    } else if (message.type === 'close') {
      process.disconnect();
    } else if (message.type === 'run') {
      goReceived = false;
      run(message, () => (goReceived ? Promise.resolve() : new Promise<void>((resolve) => (go = resolve))))
        .then(send, (err: unknown) =>
          send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
        )
        .finally(() => {
          go = null;
        });
    }
  });
}
