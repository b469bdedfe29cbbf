// Hand-built route tables and fake services for the router's unit tests.
import { Registry } from 'prom-client';
import { type FakeTry, fakeNext } from '../resilience/exchange.test-support.js';
import type { HttpMatch, HttpRouteEntry, HttpRule, RouteOverrides, RouteTable } from '../routes/index.js';
import { createRouteMetrics, type RouteMetrics } from './route-metrics.js';
import type { RoutedService } from './router.js';

export const NO_OVERRIDES: RouteOverrides = {
  timeouts: { requestMs: null, backendRequestMs: null },
  retry: null,
};

export const ANY_PATH: HttpMatch = {
  path: { type: 'PathPrefix', value: '/' },
  headers: [],
  queryParams: [],
  method: null,
};

let ruleCount = 0;

/** A rule of route `default/r` sending to `backends` (service → weight) unless `rule` says otherwise. */
export function rule(backends: Record<string, number>, fields: Partial<HttpRule> = {}): HttpRule {
  const index = ruleCount++;
  return {
    origin: { route: 'default/r', kind: 'HTTPRoute', index, name: `rules[${index}]` },
    requestHeaders: null,
    responseHeaders: null,
    redirect: null,
    rewrite: null,
    mirrors: [],
    backends: Object.entries(backends).map(([service, weight]) => ({ service, weight })),
    overrides: NO_OVERRIDES,
    ...fields,
  };
}

/** A table with `entries` (in precedence order) attached to `parent`. */
export function table(parent: string, entries: readonly HttpRouteEntry[]): RouteTable {
  return { http: new Map([[parent, entries]]), grpc: new Map(), routes: [] };
}

export interface FakeService extends RoutedService {
  readonly tries: FakeTry[];
  /** The overrides of each stack asked for, in order. */
  readonly stacked: RouteOverrides[];
}

export function fakeService(name: string, requestTimeoutMs = 15_000): FakeService {
  const next = fakeNext();
  const stacked: RouteOverrides[] = [];
  return {
    name,
    requestTimeoutMs,
    tries: next.tries,
    stacked,
    requestTimeoutMsFor: (overrides) => overrides.timeouts.requestMs ?? requestTimeoutMs,
    stackFor(overrides) {
      stacked.push(overrides);
      return next.send;
    },
    recordRequest() {},
  };
}

export function testMetrics(): { metrics: RouteMetrics; registry: Registry } {
  const registry = new Registry();
  return { metrics: createRouteMetrics(registry), registry };
}
