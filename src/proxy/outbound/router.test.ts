import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { seededRandom } from '../../spiffe/seeded-random.test-support.js';
import { recordingHandler, testRequest } from '../resilience/exchange.test-support.js';
import { EMPTY_ROUTE_TABLE, type HttpRouteEntry, type RouteTable } from '../routes/index.js';
import { OutboundRouter, type RouteDecision } from './router.js';
import { ANY_PATH, fakeService, rule, table, testMetrics } from './router.test-support.js';

function setup(routes: RouteTable, names = ['stable', 'v1', 'v2'], random = seededRandom(7)) {
  const services = new Map(names.map((name) => [name, fakeService(name)]));
  const { metrics, registry } = testMetrics();
  const router = new OutboundRouter({ services, random, clock: new ManualClock(), metrics });
  router.setTable(routes);
  /** Routes one request to parent `stable` as the listener does; returns the decision. */
  const request = (target = '/', headers: string[] = ['host', 'stable'], method = 'GET') => {
    const handler = recordingHandler();
    const decision = router.decide(router.routesOf('stable')!, method, target, headers);
    if (decision.kind === 'send')
      router.send(decision, testRequest({ method, path: target, headers }), handler);
    return { decision, handler };
  };
  const svc = (name: string) => services.get(name)!;
  return { router, request, svc, registry };
}

const entry = (r: ReturnType<typeof rule>, match = ANY_PATH): HttpRouteEntry => ({ match, rule: r });

describe('OutboundRouter', () => {
  it('leaves a service without routes alone: no entries, so the listener takes its own path', () => {
    const { router } = setup(table('other', [entry(rule({ v2: 1 }))]));
    expect(router.routesOf('stable')).toBeUndefined();
    router.setTable(EMPTY_ROUTE_TABLE);
    expect(router.routesOf('other')).toBeUndefined();
  });

  it('splits 10,000 requests 90/10 within 1% of the weights, through the backends’ stacks', () => {
    const { request, svc } = setup(table('stable', [entry(rule({ v1: 90, v2: 10 }))]));
    for (let i = 0; i < 10_000; i++) request();
    const v1 = svc('v1').tries.length;
    const v2 = svc('v2').tries.length;
    expect(v1 + v2).toBe(10_000);
    expect(Math.abs(v1 / 10_000 - 0.9)).toBeLessThan(0.01);
    expect(Math.abs(v2 / 10_000 - 0.1)).toBeLessThan(0.01);
    expect(svc('stable').tries).toHaveLength(0);
  });

  it('sends a header-matched request to the version it forces, the rest by weight', () => {
    const canary = {
      ...ANY_PATH,
      headers: [{ type: 'Exact' as const, name: 'x-canary', value: '1' }],
    };
    const { request, svc } = setup(
      table('stable', [entry(rule({ v2: 1 }), canary), entry(rule({ v1: 1, v2: 0 }))]),
    );
    for (let i = 0; i < 50; i++) request('/', ['host', 'stable', 'x-canary', '1']);
    for (let i = 0; i < 50; i++) request('/');
    expect(svc('v2').tries).toHaveLength(50);
    expect(svc('v1').tries).toHaveLength(50);
  });

  it('names the rule in the request context and takes its timeout for the deadline', () => {
    const overrides = { timeouts: { requestMs: 250, backendRequestMs: 100 }, retry: null };
    const { request, svc } = setup(table('stable', [entry(rule({ v1: 1 }, { overrides }))]));
    const { decision } = request();
    expect(decision).toMatchObject({
      kind: 'send',
      route: expect.stringMatching(/^default\/r\/rules\[\d+\]$/),
    });
    expect((decision as Extract<RouteDecision, { kind: 'send' }>).requestTimeoutMs).toBe(250);
    expect(svc('v1').tries[0]!.request.context.route).toBe((decision as { route: string }).route);
    expect(svc('v1').stacked).toEqual([overrides]);
  });

  it('answers 404 route-not-found when no rule matches', () => {
    const exact = { ...ANY_PATH, path: { type: 'Exact' as const, value: '/only' } };
    const { request, svc } = setup(table('stable', [entry(rule({ v1: 1 }), exact)]));
    expect(request('/other').decision).toEqual({
      kind: 'answer',
      status: 404,
      error: 'route-not-found',
      location: null,
    });
    expect(request('/only').decision.kind).toBe('send');
    expect(svc('v1').tries).toHaveLength(1);
  });

  it('answers 500 no-backend when every weight is 0, and for the share of a missing service', () => {
    const { request, svc } = setup(
      table('stable', [
        entry(rule({ v1: 0, v2: 0 }), { ...ANY_PATH, path: { type: 'Exact', value: '/zero' } }),
        entry(rule({ v1: 1, gone: 1 })),
      ]),
    );
    expect(request('/zero').decision).toMatchObject({ kind: 'answer', status: 500, error: 'no-backend' });
    const outcomes = Array.from({ length: 2_000 }, () => request('/x').decision.kind);
    const refused = outcomes.filter((kind) => kind === 'answer').length;
    expect(refused / 2_000).toBeGreaterThan(0.45);
    expect(refused / 2_000).toBeLessThan(0.55);
    expect(svc('v1').tries).toHaveLength(2_000 - refused);
  });

  it('answers a redirect itself: status and Location, nothing upstream', () => {
    const redirect = {
      scheme: 'https' as const,
      hostname: 'example.com',
      path: null,
      port: null,
      statusCode: 301,
    };
    const { request, svc } = setup(table('stable', [entry(rule({}, { redirect }))]));
    expect(request('/a?b=1').decision).toEqual({
      kind: 'answer',
      status: 301,
      error: null,
      location: 'https://example.com/a?b=1',
    });
    expect(svc('v1').tries).toHaveLength(0);
  });

  it('rewrites the path and host and modifies request headers before the backend sees them', () => {
    const prefix = { ...ANY_PATH, path: { type: 'PathPrefix' as const, value: '/api' } };
    const { request, svc } = setup(
      table('stable', [
        entry(
          rule(
            { v1: 1 },
            {
              rewrite: { hostname: 'v1.internal', path: { type: 'ReplacePrefixMatch', value: '/v1' } },
              requestHeaders: { set: [{ name: 'x-env', value: 'canary' }], add: [], remove: ['x-drop'] },
            },
          ),
          prefix,
        ),
      ]),
    );
    request('/api/items?x=1', ['host', 'stable', 'x-drop', 'y', 'x-env', 'old']);
    const sent = svc('v1').tries[0]!.request;
    expect(sent.path).toBe('/v1/items?x=1');
    expect(sent.headers).toEqual(['host', 'v1.internal', 'x-env', 'canary']);
  });

  it('modifies the response headers on the way back', () => {
    const { request, svc } = setup(
      table('stable', [
        entry(
          rule(
            { v1: 1 },
            { responseHeaders: { set: [{ name: 'x-version', value: 'v1' }], add: [], remove: ['server'] } },
          ),
        ),
      ]),
    );
    const { handler } = request();
    let received: string[] = [];
    handler.onHeaders = (status, raw) => {
      received = [String(status), ...raw.map((b) => b.toString())];
      return true;
    };
    svc('v1').tries[0]!.respond(200, { server: 'app', a: 'b' });
    expect(received).toEqual(['200', 'a', 'b', 'x-version', 'v1']);
  });

  it('counts requests by rule and backend, and the proxy’s own answers apart', async () => {
    const { request, registry } = setup(table('stable', [entry(rule({ v1: 1, gone: 0 }))]));
    for (let i = 0; i < 3; i++) request();
    const text = await registry.metrics();
    expect(text).toMatch(
      /sigil_proxy_route_requests_total\{route="default\/r\/rules\[\d+\]",backend="v1"\} 3/,
    );
  });

  it('keeps a decided request on the stack it was given when the table changes', () => {
    const { router, svc } = setup(table('stable', [entry(rule({ v1: 1 }))]));
    const decision = router.decide(router.routesOf('stable')!, 'GET', '/', ['host', 'stable']);
    router.setTable(table('stable', [entry(rule({ v2: 1 }))]));
    if (decision.kind !== 'send') throw new Error('expected a send');
    router.send(decision, testRequest(), recordingHandler());
    expect(svc('v1').tries).toHaveLength(1);
    expect(router.decide(router.routesOf('stable')!, 'GET', '/', []).kind).toBe('send');
  });
});
