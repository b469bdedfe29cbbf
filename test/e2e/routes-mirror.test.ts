// RequestMirror through real sidecars (issue 12): the shadow gets marked copies (x-sigil-mirror,
// Host with -shadow), bodies up to 64 KiB included; a shadow that is slow or down changes nothing
// for the caller, neither status nor latency; a percentage mirrors that share of requests.
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { makeSharedDir } from '../support/agent-harness.js';
import { NO_EJECTION, servicesYaml, useResilienceMesh } from '../support/resilience-mesh.js';
import { scrape, send, sleep, total } from '../support/traffic.js';

const CLIENT = 'client';
// Readable by the sidecars' uids; removed after the file (file-cleanup.ts).
const ROUTES = path.join(makeSharedDir('sigil-mirror-').dir, 'routes.yaml');

const mirrorTo = (service: string, extra = '') =>
  `{ type: RequestMirror, requestMirror: { backendRef: { name: ${service} }${extra} } }`;
writeFileSync(
  ROUTES,
  `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: main, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: main }]
  rules:
  - name: to-down
    matches: [{ path: { type: PathPrefix, value: /down } }]
    filters: [${mirrorTo('down')}]
    backendRefs: [{ name: main }]
  - name: half
    matches: [{ path: { type: PathPrefix, value: /half } }]
    filters: [${mirrorTo('shadow', ', percent: 50')}]
    backendRefs: [{ name: main }]
  - name: all
    filters: [${mirrorTo('shadow')}]
    backendRefs: [{ name: main }]
`,
);
chmodSync(ROUTES, 0o644);

const mesh = useResilienceMesh([
  { name: 'backend', uid: 1, apps: ['main', 'shadow'] },
  {
    name: CLIENT,
    uid: 65534,
    outbound: (m) => {
      const ids = [m.id('backend')];
      const settings = { outlier_detection: NO_EJECTION };
      return `${servicesYaml([
        { name: 'main', server_ids: ids, endpoints: [m.inbound('main')], ...settings },
        { name: 'shadow', server_ids: ids, endpoints: [m.inbound('shadow')], ...settings },
        // Nothing listens on port 1: every connection is refused.
        { name: 'down', server_ids: ids, endpoints: ['127.0.0.1:1'], ...settings },
      ])}routes_file: ${JSON.stringify(ROUTES)}\n`;
    },
  },
]);

beforeEach(() => {
  for (const app of ['main', 'shadow']) {
    mesh.app(app).set({});
    mesh.app(app).clear();
  }
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await sleep(50);
}

describe('mirroring through the sidecar', () => {
  it('sends the shadow marked copies, bodies up to 64 KiB included, and leaves the request unmarked', async () => {
    const port = mesh.port(CLIENT, 'main');
    for (let i = 0; i < 20; i++)
      expect(await send(port, { path: `/get/${i}` })).toMatchObject({ status: 200, endpoint: 'main' });
    expect(await send(port, { method: 'POST', path: '/post', body: Buffer.alloc(1024, 7) })).toMatchObject({
      status: 200,
      endpoint: 'main',
    });
    const large = await send(port, { method: 'PUT', path: '/large', body: Buffer.alloc(100 * 1024, 7) });
    expect(large).toMatchObject({ status: 200, endpoint: 'main' });

    const shadow = mesh.app('shadow');
    await until(() => shadow.count() >= 21);
    expect(shadow.count()).toBe(21);
    for (const copy of shadow.received) {
      expect(copy.headers['x-sigil-mirror']).toBe('1');
      expect(copy.headers.host).toMatch(/^127\.0\.0\.1-shadow:\d+$/);
    }
    expect(shadow.received.find((r) => r.path === '/post')).toMatchObject({
      method: 'POST',
      bodyBytes: 1024,
    });
    expect(shadow.count((r) => r.path === '/large')).toBe(0);
    const main = mesh.app('main');
    expect(main.count()).toBe(22);
    expect(main.received.every((r) => r.headers['x-sigil-mirror'] === undefined)).toBe(true);
    expect(main.received.find((r) => r.path === '/large')?.bodyBytes).toBe(100 * 1024);

    const metrics = await scrape(mesh.adminPort(CLIENT));
    expect(total(metrics, 'sigil_proxy_mirror_requests_total', { service: 'shadow', outcome: 'sent' })).toBe(
      21,
    );
    expect(
      total(metrics, 'sigil_proxy_mirror_requests_total', { service: 'shadow', outcome: 'too-large' }),
    ).toBe(1);
  });

  it('keeps the caller’s status and latency when the shadow takes 2 s', async () => {
    mesh.app('shadow').set({ latencyMs: 2_000 });
    const port = mesh.port(CLIENT, 'main');
    const outcomes = [];
    for (let i = 0; i < 10; i++) outcomes.push(await send(port, { path: `/slow/${i}` }));
    expect(outcomes.every((o) => o.status === 200 && o.endpoint === 'main')).toBe(true);
    // Each answer is the main app's (milliseconds), nowhere near the shadow's 2 s.
    expect(Math.max(...outcomes.map((o) => o.latencyMs))).toBeLessThan(1_000);
    await until(() => mesh.app('shadow').count() >= 10);
    expect(mesh.app('shadow').count()).toBe(10);
  });

  it('keeps the caller’s status and latency when the shadow is down', async () => {
    const port = mesh.port(CLIENT, 'main');
    const outcomes = [];
    for (let i = 0; i < 10; i++) outcomes.push(await send(port, { path: `/down/${i}` }));
    expect(outcomes.every((o) => o.status === 200 && o.endpoint === 'main')).toBe(true);
    expect(Math.max(...outcomes.map((o) => o.latencyMs))).toBeLessThan(1_000);
    const metrics = await scrape(mesh.adminPort(CLIENT));
    expect(total(metrics, 'sigil_proxy_mirror_requests_total', { service: 'down', outcome: 'sent' })).toBe(
      10,
    );
    // The copies failed at the shadow's endpoint, not at the caller's.
    expect(total(metrics, 'sigil_proxy_upstream_retries_total', { service: 'down' })).toBe(0);
  });

  it('mirrors the share a percentage asks for', async () => {
    const port = mesh.port(CLIENT, 'main');
    for (let i = 0; i < 200; i++) await send(port, { path: `/half/${i}` });
    await sleep(300);
    const share = mesh.app('shadow').count() / 200;
    expect(share).toBeGreaterThan(0.35);
    expect(share).toBeLessThan(0.65);
    expect(mesh.app('main').count()).toBe(200);
  });
});
