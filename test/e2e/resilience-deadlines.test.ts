// Timeouts, deadlines and chains through real sidecars (issue 11). A per-try timeout moves the
// request to another endpoint; a whole-request timeout answers 504. In the chain client → sidecar →
// B → B's sidecar → C, B forwards x-sigil-deadline and x-sigil-attempt as a well-behaved app does:
// the deadline caps B's own call, a call after the deadline never reaches C, and when C fails
// every request only the first hop retries, so C sees at most 1.3x the client's requests.
import { beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/agent-harness.js';
import { NO_EJECTION, servicesYaml, useResilienceMesh } from '../support/resilience-mesh.js';
import { drive, scrape, send, sleep, total } from '../support/traffic.js';

const CLIENT = 'client';
const BUDGET = { ratio: 0.2, min_per_second: 10, window: '1s' };
const HOP_TIMEOUT_MS = 800;
const mesh = useResilienceMesh([
  { name: 'backend', uid: 1, apps: ['fast', 'slow', 'hang', 'capp'] },
  {
    name: 'middle',
    uid: 3,
    apps: ['bapp'],
    outbound: (m) =>
      servicesYaml([
        {
          name: 'c',
          server_ids: [m.id('backend')],
          endpoints: [m.inbound('capp')],
          retries: { budget: BUDGET },
          outlier_detection: NO_EJECTION,
        },
      ]),
  },
  {
    name: CLIENT,
    uid: 65534,
    outbound: (m) =>
      servicesYaml([
        {
          name: 'pertry',
          server_ids: [m.id('backend')],
          endpoints: [m.inbound('slow'), m.inbound('fast')],
          load_balancer: { policy: 'round-robin' },
          timeouts: { try: '200ms', request: '3s' },
        },
        {
          name: 'whole',
          server_ids: [m.id('backend')],
          endpoints: [m.inbound('hang')],
          timeouts: { request: '300ms' },
        },
        {
          name: 'hop',
          server_ids: [m.id('middle')],
          endpoints: [m.inbound('bapp')],
          timeouts: { request: `${HOP_TIMEOUT_MS}ms` },
          outlier_detection: NO_EJECTION,
        },
        {
          name: 'chain',
          server_ids: [m.id('middle')],
          endpoints: [m.inbound('bapp')],
          retries: { budget: BUDGET },
          outlier_detection: NO_EJECTION,
        },
      ]),
  },
]);

beforeEach(() => {
  for (const app of ['fast', 'slow', 'hang', 'capp', 'bapp']) {
    mesh.app(app).set({});
    mesh.app(app).clear();
  }
  mesh.app('slow').set({ latencyMs: 1_000 });
  mesh.app('hang').set({ hang: true });
  mesh.app('bapp').set({ forwardTo: { port: mesh.port('middle', 'c') } });
});

describe('timeouts', () => {
  it('gives up a try after the per-try timeout and succeeds on the fast endpoint', async () => {
    const outcomes: Awaited<ReturnType<typeof send>>[] = [];
    for (let i = 0; i < 8; i++) outcomes.push(await send(mesh.port(CLIENT, 'pertry')));
    for (const o of outcomes) expect(o).toMatchObject({ status: 200, endpoint: 'fast' });
    const slow = mesh.app('slow');
    expect(slow.count((r) => r.attempt === '1')).toBeGreaterThan(0);
    expect(mesh.app('fast').count((r) => r.attempt === '2')).toBe(slow.count());
    // A try that met the slow endpoint cost the per-try timeout, not the endpoint's full second.
    const retried = outcomes.filter((o) => o.latencyMs >= 190);
    expect(retried.length).toBe(slow.count());
    for (const o of retried) expect(o.latencyMs).toBeLessThan(800);
    const metrics = await scrape(mesh.adminPort(CLIENT));
    expect(total(metrics, 'sigil_proxy_upstream_retries_total', { service: 'pertry' })).toBe(slow.count());
  });

  it('answers 504 timeout when the whole request takes too long', async () => {
    const res = await send(mesh.port(CLIENT, 'whole'));
    expect(res).toMatchObject({ status: 504, sigilError: 'timeout' });
    expect(res.latencyMs).toBeGreaterThanOrEqual(280);
    expect(res.latencyMs).toBeLessThan(1_500);
    expect(mesh.app('hang').count()).toBe(1);
  });
});

describe('deadline propagation across two hops', () => {
  it("caps B's own call at the client's deadline", async () => {
    const capp = mesh.app('capp');
    const bapp = mesh.app('bapp');
    capp.set({ hang: true });
    const sentAt = Date.now();
    const res = await send(mesh.port(CLIENT, 'hop'));
    expect(res).toMatchObject({ status: 504, sigilError: 'timeout' });
    const deadline = bapp.received[0]!.deadlineMs!;
    expect(deadline).toBeGreaterThanOrEqual(sentAt + HOP_TIMEOUT_MS - 50);
    expect(deadline).toBeLessThanOrEqual(sentAt + HOP_TIMEOUT_MS + 200);
    // B's sidecar kept the client's deadline (not its own 15 s default) on the call to C...
    await waitFor(
      () => bapp.forwarded.length === 1,
      5_000,
      () => "B's call to C did not end",
    );
    expect(capp.received[0]!.deadlineMs).toBe(deadline);
    // ... and ended that call at the deadline.
    const [call] = bapp.forwarded;
    expect(call!.status).toBe(504);
    expect(['timeout', 'deadline-exceeded']).toContain(call!.sigilError);
    expect(call!.atMs).toBeLessThanOrEqual(deadline + 300);
  });

  it('never lets a call made after the deadline reach the next app', async () => {
    const capp = mesh.app('capp');
    const bapp = mesh.app('bapp');
    bapp.set({ forwardTo: { port: mesh.port('middle', 'c'), delayMs: HOP_TIMEOUT_MS + 300 } });
    const res = await send(mesh.port(CLIENT, 'hop'));
    expect(res).toMatchObject({ status: 504, sigilError: 'timeout' });
    await waitFor(
      () => bapp.forwarded.length === 1,
      5_000,
      () => "B's late call did not end",
    );
    expect(bapp.forwarded[0]).toMatchObject({ status: 504, sigilError: 'deadline-exceeded' });
    expect(capp.count()).toBe(0);
  });
});

describe('a three-hop chain where C fails every request', () => {
  it('retries at the first hop only: C sees at most 1.3x the requests the client sent', async () => {
    const capp = mesh.app('capp');
    const bapp = mesh.app('bapp');
    // Warm up first: the connections (and their mTLS handshakes) along the chain, so that the run
    // below offers its rate rather than queueing behind handshakes; then let the budget window pass.
    await drive(mesh.port(CLIENT, 'chain'), { rps: 100, durationMs: 500 });
    await sleep(1_100);
    capp.clear();
    bapp.clear();
    capp.set({ failShare: 1, failStatus: 503 });
    const outcomes = await drive(mesh.port(CLIENT, 'chain'), { rps: 150, durationMs: 3_000 });
    const seen = `client ${outcomes.length}, B ${bapp.count()}, C ${capp.count()}, statuses ${JSON.stringify(
      outcomes.filter((o) => o.status !== 503).slice(0, 5),
    )}`;
    expect(
      outcomes.every((o) => o.status === 503),
      seen,
    ).toBe(true);
    expect(capp.count(), seen).toBeLessThanOrEqual(1.3 * outcomes.length);
    // The first hop did retry (B saw second tries) and B's sidecar did not: at most one call to C per call to B.
    expect(
      bapp.count((r) => r.attempt === '2'),
      seen,
    ).toBeGreaterThan(0);
    expect(capp.count(), seen).toBeLessThanOrEqual(bapp.count());
  });
});
