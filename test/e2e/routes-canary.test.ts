// Routes through real sidecars (issue 12): a 90/10 canary split over 1,000 requests, a header that
// forces the canary, weights changed by editing the routes file under load with no failed request,
// redirect, rewrite and header modifiers end to end, and a rule's own timeout and retry. The apps
// count what reached them; the 1%-over-10,000 accuracy is proven by the router's unit test.
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { makeSharedDir } from '../support/agent-harness.js';
import { NO_EJECTION, useResilienceMesh } from '../support/resilience-mesh.js';
import { drive, get, scrape, send, sleep, total } from '../support/traffic.js';

const CLIENT = 'client';
// Readable by the sidecars' uids; removed after the file (file-cleanup.ts).
const ROUTES = path.join(makeSharedDir('sigil-routes-').dir, 'routes.yaml');

const HEAD = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: stable }
spec:
  parentRefs: [{ group: "", kind: Service, name: stable }]
  rules:
  - name: canary-header
    matches: [{ headers: [{ name: x-canary, value: "1" }] }]
    backendRefs: [{ name: v2 }]
  - name: moved
    matches: [{ path: { type: Exact, value: /old } }]
    filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplaceFullPath, replaceFullPath: /new }, statusCode: 301 } }]
  - name: api
    matches: [{ path: { type: PathPrefix, value: /api } }]
    filters:
    - { type: URLRewrite, urlRewrite: { hostname: v1.internal, path: { type: ReplacePrefixMatch, replacePrefixMatch: /v1 } } }
    - { type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x-env, value: canary }], remove: [x-drop] } }
    - { type: ResponseHeaderModifier, responseHeaderModifier: { add: [{ name: x-routed, value: "yes" }] } }
    backendRefs: [{ name: stable }]
  - name: quick
    matches: [{ path: { type: PathPrefix, value: /quick } }]
    timeouts: { request: 300ms }
    backendRefs: [{ name: stable }]
  - name: retried
    matches: [{ path: { type: PathPrefix, value: /retry } }]
    retry: { codes: [500], attempts: 1 }
    backendRefs: [{ name: flaky }]
  - name: not-retried
    matches: [{ path: { type: PathPrefix, value: /noretry } }]
    backendRefs: [{ name: flaky }]
`;

/** The routes file with the default rule splitting stable/v2 by these weights. */
function routes(stable: number, v2: number): string {
  return `${HEAD}  - name: split
    backendRefs: [{ name: stable, weight: ${stable} }, { name: v2, weight: ${v2} }]
`;
}

function writeRoutes(text: string): void {
  writeFileSync(ROUTES, text);
  chmodSync(ROUTES, 0o644);
}
writeRoutes(routes(90, 10));

const mesh = useResilienceMesh([
  { name: 'backend', uid: 1, apps: ['v1', 'v2', 'flaky'] },
  {
    name: CLIENT,
    uid: 65534,
    outbound: (m) => `${clientServices(m, true)}routes_file: ${JSON.stringify(ROUTES)}\n`,
  },
]);

/**
 * The client's listeners and services; without v2, its listener sends to stable instead (so the
 * change orphans no listener, and only the routes need v2).
 */
function clientServices(m: { inbound(app: string): string; id(s: string): string }, withV2: boolean): string {
  const ids = [m.id('backend')];
  const one = { retries: { max_attempts: 1 }, outlier_detection: NO_EJECTION };
  const service = (name: string, app: string) => ({
    name,
    server_ids: ids,
    endpoints: [{ address: m.inbound(app) }],
    ...one,
  });
  const listener = (name: string, to: string) => ({
    name,
    listen: '127.0.0.1:0',
    protocol: 'http',
    service: to,
  });
  const outbound = [
    listener('stable', 'stable'),
    listener('v2', withV2 ? 'v2' : 'stable'),
    listener('flaky', 'flaky'),
  ];
  const services = [
    service('stable', 'v1'),
    ...(withV2 ? [service('v2', 'v2')] : []),
    service('flaky', 'flaky'),
  ];
  return `outbound: ${JSON.stringify(outbound)}\nservices: ${JSON.stringify(services)}\n`;
}

beforeEach(() => {
  for (const app of ['v1', 'v2', 'flaky']) {
    mesh.app(app).set({});
    mesh.app(app).clear();
  }
});

async function waitForLog(message: string, count: number): Promise<void> {
  for (let i = 0; i < 100 && mesh.sidecar(CLIENT).lines(message).length < count; i++) await sleep(100);
  expect(mesh.sidecar(CLIENT).lines(message).length).toBeGreaterThanOrEqual(count);
}

describe('canary routes through the sidecar', () => {
  it('splits 1,000 requests 90/10 within a few percent', async () => {
    const outcomes = await drive(mesh.port(CLIENT, 'stable'), { rps: 250, durationMs: 4_000 });
    expect(outcomes.every((o) => o.status === 200)).toBe(true);
    const v2 = outcomes.filter((o) => o.endpoint === 'v2').length / outcomes.length;
    expect(outcomes).toHaveLength(1_000);
    expect(Math.abs(v2 - 0.1)).toBeLessThan(0.04);
    expect(mesh.app('v1').count() + mesh.app('v2').count()).toBe(1_000);
    const metrics = await scrape(mesh.adminPort(CLIENT));
    expect(total(metrics, 'sigil_proxy_route_requests_total', { route: 'default/stable/split' })).toBe(1_000);
    expect(
      total(metrics, 'sigil_proxy_route_requests_total', { route: 'default/stable/split', backend: 'v2' }),
    ).toBe(mesh.app('v2').count());
  });

  it('sends every request with x-canary: 1 to v2', async () => {
    for (let i = 0; i < 30; i++) {
      const res = await send(mesh.port(CLIENT, 'stable'), { headers: { 'x-canary': '1' } });
      expect(res).toMatchObject({ status: 200, endpoint: 'v2' });
    }
    expect(mesh.app('v1').count()).toBe(0);
  });

  it('answers a redirect itself', async () => {
    const res = await get(mesh.port(CLIENT, 'stable'), '/old?q=1');
    expect(res.status).toBe(301);
    expect(res.headers.location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/new\?q=1$/);
    expect(mesh.app('v1').count() + mesh.app('v2').count()).toBe(0);
  });

  it('rewrites path and host and modifies request and response headers', async () => {
    const res = await get(mesh.port(CLIENT, 'stable'), '/api/items?x=1', {
      'x-drop': 'secret',
      'x-env': 'prod',
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-routed']).toBe('yes');
    const [seen] = mesh.app('v1').received;
    expect(seen!.path).toBe('/v1/items?x=1');
    expect(seen!.headers.host).toBe('v1.internal');
    expect(seen!.headers['x-env']).toBe('canary');
    expect(seen!.headers['x-drop']).toBeUndefined();
  });

  it('applies a rule’s request timeout, to the deadline the next hop reads too', async () => {
    mesh.app('v1').set({ latencyMs: 2_000 });
    const started = Date.now();
    const res = await send(mesh.port(CLIENT, 'stable'), { path: '/quick' });
    expect(res).toMatchObject({ status: 504, sigilError: 'timeout' });
    expect(res.latencyMs).toBeLessThan(1_500);
    // The app recorded the request when it arrived, before its latency.
    const deadline = mesh.app('v1').received[0]?.deadlineMs;
    expect(deadline).toBeGreaterThanOrEqual(started + 250);
    expect(deadline).toBeLessThanOrEqual(started + 1_000);
  });

  it('retries by the rule’s own retry settings, and not where the rule has none', async () => {
    const flaky = mesh.app('flaky');
    flaky.set({ failFirstTry: true, failStatus: 500 });
    expect(await send(mesh.port(CLIENT, 'stable'), { path: '/retry' })).toMatchObject({
      status: 200,
      endpoint: 'flaky',
    });
    expect(flaky.received.map((r) => r.attempt)).toEqual(['1', '2']);
    flaky.clear();
    expect(await send(mesh.port(CLIENT, 'stable'), { path: '/noretry' })).toMatchObject({
      status: 500,
      endpoint: 'flaky',
    });
    expect(flaky.count()).toBe(1);
  });

  it('takes new weights from an edited routes file under load, failing no request', async () => {
    const load = drive(mesh.port(CLIENT, 'stable'), { rps: 100, durationMs: 5_000 });
    await sleep(1_000);
    writeRoutes(routes(0, 100));
    await waitForLog('Routes reloaded', 1);
    const reloadedAt = Date.now();
    const outcomes = await load;
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    // After the reload (and the requests then in flight), everything goes to v2.
    const late = mesh.app('v1').received.filter((r) => r.atMs > reloadedAt + 200);
    expect(late).toEqual([]);
    expect(mesh.app('v2').count((r) => r.atMs > reloadedAt + 200)).toBeGreaterThan(100);
  });

  it('keeps the routes on a broken file, and refuses a config change removing a routed service', async () => {
    writeRoutes('kind: HTTPRoute\nspec: { nonsense: 1 }\n');
    await waitForLog('Routes file rejected; the previous routes stay in force', 1);
    expect(await send(mesh.port(CLIENT, 'stable'))).toMatchObject({ status: 200, endpoint: 'v2' });

    mesh.rewriteOutbound(CLIENT, `${clientServices(mesh, false)}routes_file: ${JSON.stringify(ROUTES)}\n`);
    await waitForLog(
      'Config change rejected: the routes in force name services it removes; edit the routes first. The previous services stay in force',
      1,
    );
    expect(await send(mesh.port(CLIENT, 'stable'))).toMatchObject({ status: 200, endpoint: 'v2' });
    const config = JSON.parse((await get(mesh.adminPort(CLIENT), '/config')).body) as { routes: unknown[] };
    expect(config.routes).toEqual([{ kind: 'HTTPRoute', name: 'default/stable', parents: ['stable'] }]);
  });
});
