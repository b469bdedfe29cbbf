// The happy-path cost of a service's stack alone, in this process: the same requests through the
// "plain" and "resilient" services of the resilience scenario, each endpoint's pool replaced by one
// that answers 200 at once, so what differs is only the layers (retry, budget, outlier detection,
// circuit, P2C over two endpoints, the attempt header). The sidecar pair's CPU per request swings
// ±10% from run to run on this machine; this figure does not, and says how much of a measured
// difference the layers can explain.
import { Registry } from 'prom-client';
import { filterHeaders } from '../src/proxy/headers.js';
import type { ProxyIdentity } from '../src/proxy/identity.js';
import { UpstreamService } from '../src/proxy/outbound/service.js';
import { createServiceMetrics } from '../src/proxy/outbound/service-metrics.js';
import { applyDeadline } from '../src/proxy/resilience/deadline.js';
import { type ExchangeHandler, newRequestContext } from '../src/proxy/resilience/exchange.js';
import { DEFAULT_SERVICE_SETTINGS, type ServiceConfig } from '../src/proxy/services/config.js';
import { systemClock } from '../src/spiffe/clock.js';
import { discard, measureRouteCost, type RouteCost } from './proxy-route-cost.js';

/** A wrk request's head as the outbound listener sees it. */
const RAW_HEAD = ['Host', '127.0.0.1:15001', 'User-Agent', 'wrk', 'Accept', '*/*'];
const REQUESTS = 200_000;
const ROUNDS = 5;

const answerAtOnce = {
  dispatch(_options: unknown, handler: ExchangeHandler): boolean {
    handler.onConnect(() => {});
    handler.onHeaders(200, [], () => {}, 'OK');
    handler.onData(Buffer.from('ok'));
    handler.onComplete(null);
    return true;
  },
  async close() {},
  async destroy() {},
};

function service(name: string, ports: readonly number[], settings: Partial<ServiceConfig>): UpstreamService {
  const config: ServiceConfig = {
    name,
    serverIds: ['spiffe://example.org/bench/server-sidecar'],
    endpoints: ports.map((port) => ({
      address: { host: '127.0.0.1', port },
      serverIds: ['spiffe://example.org/bench/server-sidecar'],
    })),
    dns: null,
    ...DEFAULT_SERVICE_SETTINGS,
    ...settings,
  };
  // Only what a service asks of its identity before it connects anywhere.
  const identity = { onUpdate: () => () => {} } as unknown as ProxyIdentity;
  const log = new Proxy({}, { get: () => () => {} }) as ConstructorParameters<
    typeof UpstreamService
  >[1]['log'];
  const upstream = new UpstreamService(config, {
    identity,
    clock: systemClock,
    random: Math.random,
    cells: createServiceMetrics(new Registry()).service(name),
    log,
  });
  // The pools are private to the endpoints: swapped here, in this measurement only.
  for (const endpoint of (upstream as unknown as { endpoints: { list: { pool: unknown }[] } }).endpoints
    .list) {
    endpoint.pool = answerAtOnce;
  }
  return upstream;
}

function nsPerRequest(upstream: UpstreamService): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < REQUESTS; i++) {
    const filtered = filterHeaders(RAW_HEAD);
    const context = newRequestContext({ inRetryScope: false, hasIdempotencyKey: false });
    applyDeadline(context, systemClock.nowMs(), upstream.requestTimeoutMs, undefined, undefined);
    upstream.send({ method: 'GET', path: '/', headers: filtered.headers, body: null, context }, discard);
  }
  return Number(process.hrtime.bigint() - started) / REQUESTS;
}

export interface StackCost {
  readonly plainNs: number;
  readonly resilientNs: number;
  /** The plain service sent to directly and through a 50-rule route table with a 90/10 split. */
  readonly routes: RouteCost;
}

/** The resilience scenario's plain service: no retries, no outlier detection. */
const PLAIN: Partial<ServiceConfig> = {
  retries: { ...DEFAULT_SERVICE_SETTINGS.retries, maxAttempts: 1 },
  outlierDetection: {
    ...DEFAULT_SERVICE_SETTINGS.outlierDetection,
    consecutiveFailures: 0,
    failureRate: 0,
  },
};

/** Medians over interleaved rounds of the plain and resilient stacks' CPU per request, in ns. */
export async function measureStackCost(): Promise<StackCost> {
  const plain = service('plain', [1], PLAIN);
  const resilient = service('resilient', [1, 2], {});
  const plainNs: number[] = [];
  const resilientNs: number[] = [];
  nsPerRequest(plain);
  nsPerRequest(resilient);
  for (let round = 0; round < ROUNDS; round++) {
    plainNs.push(nsPerRequest(plain));
    resilientNs.push(nsPerRequest(resilient));
  }
  const canary = service('canary', [1], PLAIN);
  const routes = measureRouteCost(plain, canary);
  await Promise.all([plain.close(), resilient.close(), canary.close()]);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return { plainNs: median(plainNs), resilientNs: median(resilientNs), routes };
}
