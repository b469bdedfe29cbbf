// Outlier detection across endpoints through real sidecars (issue 11): one failing endpoint among
// three is ejected while callers keep succeeding on the others, and returns after it recovers;
// with every endpoint failing, no more than max_ejected_share of them is ejected at once; and an
// endpoint whose sidecar presents another SPIFFE ID is a failure (ejected), never an answer.
import { beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/agent-harness.js';
import { servicesYaml, useResilienceMesh } from '../support/resilience-mesh.js';
import { drive, endpointsOf, type Outcome, scrape, share, sleep, total } from '../support/traffic.js';

const CLIENT = 'client';
/**
 * These tests are about outlier detection, so every endpoint is met in turn. Under p2c-ewma a failed
 * try costs the endpoint its worst latency so far and p2c then shuns it until that estimate decays
 * (ewma_decay, 10 s): the five failures in a row that eject it, or the probe that returns it, took
 * from ~10 s to over 30 s when a failure had been slow (seen while writing these tests).
 */
const ROUND_ROBIN = { policy: 'round-robin' } as const;
const APPS = ['o0', 'o1', 'o2', 'o3'];
const mesh = useResilienceMesh([
  { name: 'backend', uid: 1, apps: APPS },
  // Another workload with a valid SVID of its own, listening where the service has an endpoint.
  { name: 'impostor', uid: 2, apps: ['x0'] },
  {
    name: CLIENT,
    uid: 65534,
    outbound: (m) =>
      servicesYaml([
        {
          name: 'outlier',
          server_ids: [m.id('backend')],
          endpoints: ['o0', 'o1', 'o2'].map((a) => m.inbound(a)),
          outlier_detection: { consecutive_failures: 5, base_ejection: '1s' },
          load_balancer: ROUND_ROBIN,
        },
        {
          name: 'share',
          server_ids: [m.id('backend')],
          endpoints: APPS.map((a) => m.inbound(a)),
          // Long enough that ejections pile up within the run if the cap does not hold; no service
          // circuit (failure_rate 0), which would rightly open with all four failing.
          outlier_detection: {
            consecutive_failures: 3,
            failure_rate: 0,
            base_ejection: '10s',
            max_ejected_share: 0.5,
          },
          load_balancer: ROUND_ROBIN,
        },
        {
          name: 'identity',
          server_ids: [m.id('backend')],
          endpoints: [m.inbound('o0'), m.inbound('o1'), m.inbound('x0')],
          load_balancer: ROUND_ROBIN,
        },
      ]),
  },
]);

beforeEach(() => {
  for (const app of [...APPS, 'x0']) {
    mesh.app(app).set({});
    mesh.app(app).clear();
  }
});

describe('outlier detection through the sidecar', () => {
  it('ejects the failing endpoint of three while callers succeed, and takes it back when it recovers', async () => {
    const sick = mesh.app('o2');
    sick.set({ failShare: 1, failStatus: 502 });
    const port = mesh.port(CLIENT, 'outlier');
    const outcomes = await drive(port, { rps: 50, durationMs: 1_500 });
    expect(share(outcomes, (o) => o.status === 200)).toBeGreaterThanOrEqual(0.99);
    const admin = mesh.adminPort(CLIENT);
    const states = Object.fromEntries((await endpointsOf(admin, 'outlier')).map((e) => [e.address, e.state]));
    expect(states).toEqual({
      [mesh.inbound('o0')]: 'healthy',
      [mesh.inbound('o1')]: 'healthy',
      [mesh.inbound('o2')]: 'ejected',
    });
    const metrics = await scrape(admin);
    expect(
      total(metrics, 'sigil_proxy_upstream_ejections_total', {
        service: 'outlier',
        endpoint: mesh.inbound('o2'),
      }),
    ).toBeGreaterThan(0);
    expect(
      total(metrics, 'sigil_proxy_upstream_ejections_total', {
        service: 'outlier',
        endpoint: mesh.inbound('o0'),
      }),
    ).toBe(0);

    sick.set({});
    sick.clear();
    await waitFor(
      async () => {
        await drive(port, { rps: 50, durationMs: 200 });
        return sick.count((r) => r.status === 200) > 0;
      },
      10_000,
      () => 'the recovered endpoint got no traffic back',
    );
    await waitFor(
      async () => (await endpointsOf(admin, 'outlier')).every((e) => e.state === 'healthy'),
      5_000,
      () => 'the recovered endpoint is not healthy in /config',
    );
    expect(
      total(await scrape(admin), 'sigil_proxy_upstream_returns_total', {
        service: 'outlier',
        endpoint: mesh.inbound('o2'),
      }),
    ).toBeGreaterThan(0);
  });

  it('never ejects more than max_ejected_share of the endpoints, even when all four fail', async () => {
    for (const app of APPS) mesh.app(app).set({ failShare: 1, failStatus: 503 });
    const port = mesh.port(CLIENT, 'share');
    const admin = mesh.adminPort(CLIENT);
    let most = 0;
    const load = drive(port, { rps: 50, durationMs: 2_000 });
    let running = true;
    void load.finally(() => {
      running = false;
    });
    while (running) {
      const ejected = (await endpointsOf(admin, 'share')).filter((e) => e.state !== 'healthy').length;
      most = Math.max(most, ejected);
      await sleep(50);
    }
    const outcomes = await load;
    expect(most).toBe(2);
    const metrics = await scrape(admin);
    const states = metrics.filter(
      (s) => s.name === 'sigil_proxy_upstream_endpoint_state' && s.labels.service === 'share',
    );
    expect(states).toHaveLength(4);
    expect(states.filter((s) => s.value !== 0)).toHaveLength(2);
    // Half the endpoints stay in service, so callers get the apps' own 503s, not circuit-open.
    expect(outcomes.some((o) => o.sigilError === 'circuit-open')).toBe(false);
    expect(outcomes.some((o) => o.status === 503 && o.endpoint !== undefined)).toBe(true);
  });

  it('treats an endpoint presenting the wrong SPIFFE ID as a failure: ejected, never an answer', async () => {
    const port = mesh.port(CLIENT, 'identity');
    const admin = mesh.adminPort(CLIENT);
    const impostorState = async () =>
      (await endpointsOf(admin, 'identity')).find((e) => e.address === mesh.inbound('x0'))?.state;
    // Round robin meets the impostor every third try, so five failures in a row come within a second.
    const outcomes: Outcome[] = [];
    await waitFor(
      async () => {
        outcomes.push(...(await drive(port, { rps: 40, durationMs: 500 })));
        return (await impostorState()) === 'ejected';
      },
      10_000,
      () => `the impostor endpoint was not ejected after ${outcomes.length} requests`,
    );
    expect(share(outcomes, (o) => o.status === 200)).toBeGreaterThanOrEqual(0.99);
    expect(
      outcomes.filter((o) => o.status === 200).every((o) => o.endpoint === 'o0' || o.endpoint === 'o1'),
    ).toBe(true);
    expect(mesh.app('x0').count()).toBe(0);
    const metrics = await scrape(admin);
    expect(
      total(metrics, 'sigil_proxy_upstream_ejections_total', {
        service: 'identity',
        endpoint: mesh.inbound('x0'),
      }),
    ).toBeGreaterThan(0);
    expect(
      total(metrics, 'sigil_proxy_upstream_retries_total', { service: 'identity', reason: 'identity' }),
    ).toBe(
      total(metrics, 'sigil_proxy_upstream_balancer_picks_total', {
        service: 'identity',
        endpoint: mesh.inbound('x0'),
      }),
    );
    expect(mesh.sidecar(CLIENT).logs()).toContain(mesh.id('impostor'));
  });
});
