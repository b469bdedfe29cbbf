// The happy-path cost of routing, in this process, as proxy-stack-cost.ts measures the layers: the
// same requests sent as the outbound listener sends them, to a plain service directly and through
// the router with a table of 50 routes for that service (49 path rules the request does not match,
// then a 90/10 split between two plain services), pools answering at once. The difference is what
// selecting a rule, drawing a backend and counting it cost per request.
import { Registry } from 'prom-client';
import { filterHeaders } from '../src/proxy/headers.js';
import { createRouteMetrics } from '../src/proxy/outbound/route-metrics.js';
import { OutboundRouter } from '../src/proxy/outbound/router.js';
import type { UpstreamService } from '../src/proxy/outbound/service.js';
import { applyDeadline } from '../src/proxy/resilience/deadline.js';
import {
  type ExchangeHandler,
  newRequestContext,
  type ProxyRequest,
} from '../src/proxy/resilience/exchange.js';
import { parseRouteFile } from '../src/proxy/routes/index.js';
import { systemClock } from '../src/spiffe/clock.js';

const RAW_HEAD = ['Host', '127.0.0.1:15001', 'User-Agent', 'wrk', 'Accept', '*/*'];
const REQUESTS = 200_000;
const ROUNDS = 5;
export const ROUTE_RULES = 50;

/** Takes the response and drops it; an error fails the bench. */
export const discard: ExchangeHandler = {
  onConnect() {},
  onHeaders: () => true,
  onData: () => true,
  onComplete() {},
  onError(err) {
    throw err;
  },
};

/** One HTTPRoute document attached to the Service `parent`, with one rule (flow-style YAML). */
export function httpRouteYaml(name: string, parent: string, rule: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name} }
spec:
  parentRefs: [{ group: "", kind: Service, name: ${parent} }]
  rules: [${rule}]
`;
}

/** 49 routes on paths the bench never asks for, then the canary split every request takes. */
function routesYaml(): string {
  const route = (name: string, rule: string) => httpRouteYaml(name, 'stable', rule);
  const others = Array.from({ length: ROUTE_RULES - 1 }, (_, i) =>
    route(
      `api-v${i}`,
      `{ matches: [{ path: { type: PathPrefix, value: /api/v${i}/items } }], backendRefs: [{ name: stable }] }`,
    ),
  );
  const split = route(
    'canary',
    '{ backendRefs: [{ name: stable, weight: 90 }, { name: canary, weight: 10 }] }',
  );
  return [...others, split].join('---\n');
}

function sendOne(send: (request: ProxyRequest) => void, timeoutMs: number): void {
  const filtered = filterHeaders(RAW_HEAD);
  const context = newRequestContext({ inRetryScope: false, hasIdempotencyKey: false });
  applyDeadline(context, systemClock.nowMs(), timeoutMs, undefined, undefined);
  send({ method: 'GET', path: '/', headers: filtered.headers, body: null, context });
}

export interface RouteCost {
  readonly plainNs: number;
  readonly routedNs: number;
}

/** Medians over interleaved rounds, in ns per request; `stable` and `canary` are plain services. */
export function measureRouteCost(stable: UpstreamService, canary: UpstreamService): RouteCost {
  const services = new Map([
    ['stable', stable],
    ['canary', canary],
  ]);
  const router = new OutboundRouter({
    services,
    random: Math.random,
    clock: systemClock,
    metrics: createRouteMetrics(new Registry()),
  });
  router.setTable(parseRouteFile(routesYaml(), '(bench)', new Set(services.keys())));
  const plain = (): number => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < REQUESTS; i++)
      sendOne((request) => stable.send(request, discard), stable.requestTimeoutMs);
    return Number(process.hrtime.bigint() - started) / REQUESTS;
  };
  // As the listener does it: the table lookup, the decision (which sets the timeout), then the send.
  const routed = (): number => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < REQUESTS; i++) {
      const filtered = filterHeaders(RAW_HEAD);
      const entries = router.routesOf('stable')!;
      const decision = router.decide(entries, 'GET', '/', filtered.headers);
      if (decision.kind !== 'send') throw new Error('bench: the route table answered instead of routing');
      const context = newRequestContext({ inRetryScope: false, hasIdempotencyKey: false });
      applyDeadline(context, systemClock.nowMs(), decision.requestTimeoutMs, undefined, undefined);
      router.send(
        decision,
        { method: 'GET', path: '/', headers: filtered.headers, body: null, context },
        discard,
      );
    }
    return Number(process.hrtime.bigint() - started) / REQUESTS;
  };
  const plainNs: number[] = [];
  const routedNs: number[] = [];
  plain();
  routed();
  for (let round = 0; round < ROUNDS; round++) {
    plainNs.push(plain());
    routedNs.push(routed());
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return { plainNs: median(plainNs), routedNs: median(routedNs) };
}
