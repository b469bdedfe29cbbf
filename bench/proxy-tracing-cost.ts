// Tracing's own cost, in this process: a request's outbound and inbound halves (trace context read
// and written, span recorded and queued) at 1% and 100% sampling, spans exported over OTLP/HTTP to
// `collector` as the sidecars do, so the batches' protobuf encoding is counted too. The pairs' CPU
// per request swings several percent from repeat to repeat; this figure does not.
import { Registry } from 'prom-client';
import { startObservability } from '../src/proxy/tracing/index.js';
import { DEFAULT_BATCH } from '../src/proxy/tracing/span-batcher.js';
import { systemClock } from '../src/spiffe/clock.js';

const REQUESTS = 100_000;
const ROUNDS = 3;
/** Requests between two yields to the event loop, where exports run. */
const YIELD_EVERY = 1_000;
const SILENT = { info() {}, warn() {}, error() {}, debug() {} };

/** Median µs per request (both halves) at each sampling ratio. */
export async function measureTracingCost(
  collector: string,
  ratios: readonly number[],
): Promise<Map<number, number>> {
  const result = new Map<number, number>();
  for (const ratio of ratios) {
    const observability = await startObservability(
      { collector, sampleRatio: ratio, serviceName: 'bench', propagation: ['w3c'], batch: DEFAULT_BATCH },
      null,
      {
        registry: new Registry(),
        logger: SILENT as never,
        clock: systemClock,
        random: Math.random,
        spiffeId: 'spiffe://example.org/bench/client-sidecar',
      },
    );
    const tracer = observability.tracer;
    const round = async (): Promise<number> => {
      const started = performance.now();
      for (let i = 0; i < REQUESTS; i++) {
        const headers = ['Host', '127.0.0.1:15001', 'User-Agent', 'wrk', 'Accept', '*/*'];
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
      return ((performance.now() - started) * 1_000) / REQUESTS;
    };
    await round();
    const rounds: number[] = [];
    for (let i = 0; i < ROUNDS; i++) rounds.push(await round());
    rounds.sort((a, b) => a - b);
    result.set(ratio, rounds[Math.floor(ROUNDS / 2)]!);
    await observability.close();
  }
  return result;
}
