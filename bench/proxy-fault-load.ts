// The client of bench:proxy's fault runs: GET / at a fixed rate through the client sidecar (open loop:
// a slow or failing answer does not slow the sending), every answer classified by status and by the
// sidecar's `x-sigil-error` reason, so a 503 the app sent and one the proxy made are told apart.
// Runs in the bench process: its own CPU is not measured in these runs, only what the answers say.
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

/** Enough for the answers in flight at the rates used (a retried request may wait a backoff). */
const CONNECTIONS = 64;
/** Beyond the sidecar's default request timeout (15 s), so its own 504 arrives before ours. */
const DRAIN_TIMEOUT_MS = 20_000;
const TICK_MS = 1;

export interface FaultLoadResult {
  readonly sent: number;
  /** Answers with status 200. */
  readonly succeeded: number;
  /** Each distinct outcome and its count: "200", "503 from the app", "503 circuit-open", "error: …". */
  readonly outcomes: ReadonlyMap<string, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

function outcomeOf(status: number, sigilError: string | string[] | undefined): string {
  if (status === 200) return '200';
  const reason = Array.isArray(sigilError) ? sigilError.join(',') : sigilError;
  return reason === undefined ? `${status} from the app` : `${status} ${reason}`;
}

/** Sends `ratePerS` requests a second for `durationMs`, then waits for every answer. */
export async function runFaultLoad(
  port: number,
  ratePerS: number,
  durationMs: number,
): Promise<FaultLoadResult> {
  const pool = new Pool(`http://127.0.0.1:${port}`, {
    connections: CONNECTIONS,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: DRAIN_TIMEOUT_MS,
    bodyTimeout: DRAIN_TIMEOUT_MS,
  });
  const outcomes = new Map<string, number>();
  const latenciesMs: number[] = [];
  const count = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  const pending = new Set<Promise<void>>();
  const sendOne = () => {
    const sentAtMs = performance.now();
    const answered = pool
      .request({ path: '/', method: 'GET', headers: { host: 'bench' } })
      .then(async (res) => {
        await res.body.dump();
        latenciesMs.push(performance.now() - sentAtMs);
        count(outcomeOf(res.statusCode, res.headers['x-sigil-error']));
      })
      .catch((err: Error & { code?: string }) => {
        count(`error: ${err.code ?? err.message}`);
      })
      .finally(() => pending.delete(answered));
    pending.add(answered);
  };
  const total = Math.round((durationMs * ratePerS) / 1_000);
  const intervalMs = 1_000 / ratePerS;
  const startMs = performance.now();
  let issued = 0;
  try {
    await new Promise<void>((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor((performance.now() - startMs) / intervalMs) + 1);
        while (issued < due) {
          issued++;
          sendOne();
        }
        if (issued >= total) resolve();
        else setTimeout(tick, TICK_MS);
      };
      tick();
    });
    await Promise.race([
      Promise.all(pending),
      new Promise((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS + 1_000).unref()),
    ]);
    if (pending.size > 0) outcomes.set('unanswered', pending.size);
  } finally {
    await pool.destroy();
  }
  latenciesMs.sort((a, b) => a - b);
  const at = (p: number) =>
    latenciesMs[Math.min(latenciesMs.length - 1, Math.ceil(p * latenciesMs.length) - 1)];
  return {
    sent: issued,
    succeeded: outcomes.get('200') ?? 0,
    outcomes,
    p50Ms: at(0.5) ?? Number.NaN,
    p99Ms: at(0.99) ?? Number.NaN,
  };
}
