// Tracing's own cost, in this process: a request's outbound and inbound halves (trace context read
// and written, span recorded and queued) at 1% and 100% sampling, and the export of every span over
// OTLP/HTTP to `collector` (protobuf encoding included: the queue is made large enough that none is
// dropped, and each round lasts until the last batch is exported). CPU time, so waiting for the
// collector does not count; the collector's own work in this process does, a little. The pairs' CPU
// per request swings several percent from repeat to repeat; this figure does not.
import { Registry } from 'prom-client';
import { startObservability } from '../src/proxy/tracing/index.js';
import { DEFAULT_BATCH } from '../src/proxy/tracing/span-batcher.js';
import { systemClock } from '../src/spiffe/clock.js';

const REQUESTS = 50_000;
const ROUNDS = 3;
/** Requests between two yields to the event loop, where exports run. */
const YIELD_EVERY = 500;
const SILENT = { info() {}, warn() {}, error() {}, debug() {} };
const HEAD = ['Host', '127.0.0.1:15001', 'User-Agent', 'wrk', 'Accept', '*/*'];

/** Median µs per request (both halves, export included) at each sampling ratio. */
export async function measureTracingCost(
  collector: string,
  ratios: readonly number[],
): Promise<Map<number, number>> {
  const result = new Map<number, number>();
  for (const ratio of ratios) {
    await round(collector, ratio);
    const rounds: number[] = [];
    for (let i = 0; i < ROUNDS; i++) rounds.push(await round(collector, ratio));
    rounds.sort((a, b) => a - b);
    result.set(ratio, rounds[Math.floor(ROUNDS / 2)]!);
  }
  return result;
}

async function round(collector: string, ratio: number): Promise<number> {
  const registry = new Registry();
  const started = process.cpuUsage();
  const observability = await startObservability(
    {
      collector,
      sampleRatio: ratio,
      serviceName: 'bench',
      propagation: ['w3c'],
      // A partial batch leaves after 20 ms rather than 5 s, so a round need not wait for it.
      batch: { ...DEFAULT_BATCH, maxQueue: 2 * REQUESTS, intervalMs: 20 },
    },
    null,
    {
      registry,
      logger: SILENT as never,
      clock: systemClock,
      random: Math.random,
      spiffeId: 'spiffe://example.org/bench/client-sidecar',
    },
  );
  const tracer = observability.tracer;
  for (let i = 0; i < REQUESTS; i++) {
    const headers = HEAD.slice();
    const outbound = tracer.startOutbound('api', 'GET', '/', headers, 'spiffe://example.org/a', 'api');
    // The inbound half reads what the outbound half sent.
    const inbound = tracer.startInbound(
      'api',
      'GET',
      '/',
      headers.slice(),
      'spiffe://example.org/a',
      'spiffe://example.org/b',
    );
    inbound?.end(200, null, null);
    outbound?.end(200, null, { attempt: 1, route: null, lastEndpoint: undefined });
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((resolve) => setImmediate(resolve));
  }
  // Until the count of exported spans stops moving: the queue has drained.
  let last = -1;
  for (let exported = await spans(registry, 'exported'); exported !== last; ) {
    last = exported;
    await new Promise((resolve) => setTimeout(resolve, 100));
    exported = await spans(registry, 'exported');
  }
  await observability.close();
  const used = process.cpuUsage(started);
  const dropped = await spans(registry, 'dropped');
  if (dropped > 0)
    throw new Error(`tracing cost: ${dropped} spans dropped; the figure would leave their export out`);
  return (used.user + used.system) / REQUESTS;
}

async function spans(registry: Registry, outcome: 'exported' | 'dropped'): Promise<number> {
  const text = await registry.getSingleMetricAsString('sigil_proxy_trace_spans_total');
  return Number(new RegExp(`outcome="${outcome}"} (\\d+)`).exec(text)?.[1] ?? 0);
}
