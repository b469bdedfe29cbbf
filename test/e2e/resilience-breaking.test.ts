// Circuit breaking through real sidecars (issue 11): against a backend failing every request the
// retry budget caps amplification; the service's circuit opens (callers get 503 circuit-open
// without reaching it) and a half-open probe closes it once the backend recovers; a
// concurrency limit answers 503 overloaded at once rather than queueing.
import { beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/agent-harness.js';
import { NO_EJECTION, servicesYaml, useResilienceMesh } from '../support/resilience-mesh.js';
import { drive, endpointsOf, scrape, send, serviceOf, sleep, total } from '../support/traffic.js';

const CLIENT = 'client';
/** Budget for the amplification test: a 1 s window, so the floor is 10 retries per second of run. */
const BUDGET = { ratio: 0.2, min_per_second: 10, window: '1s' };
const mesh = useResilienceMesh([
  { name: 'backend', uid: 1, apps: ['doomed', 'breaker', 'limited'] },
  {
    name: CLIENT,
    uid: 65534,
    outbound: (m) =>
      servicesYaml([
        {
          name: 'doomed',
          server_ids: [m.id('backend')],
          endpoints: [m.inbound('doomed')],
          retries: { budget: BUDGET },
          outlier_detection: NO_EJECTION,
        },
        {
          name: 'breaker',
          server_ids: [m.id('backend')],
          endpoints: [m.inbound('breaker')],
          // One endpoint: outlier detection may not eject it (half of one is none); the circuit opens.
          outlier_detection: { failure_rate: 0.5, min_requests: 10, base_ejection: '1s' },
        },
        {
          name: 'limited',
          server_ids: [m.id('backend')],
          endpoints: [m.inbound('limited')],
          limits: { max_concurrent: 1 },
        },
      ]),
  },
]);

beforeEach(() => {
  for (const app of ['doomed', 'breaker', 'limited']) {
    mesh.app(app).set({});
    mesh.app(app).clear();
  }
});

describe('circuit breaking through the sidecar', () => {
  it('keeps amplification against a backend failing 100% within 1 + ratio + floor / rate', async () => {
    const doomed = mesh.app('doomed');
    doomed.set({ failShare: 1, failStatus: 503 });
    const load = { rps: 100, durationMs: 3_000 };
    const outcomes = await drive(mesh.port(CLIENT, 'doomed'), load);

    expect(outcomes.every((o) => o.status === 503)).toBe(true);
    // The floor may be spent once more in the window the run started in.
    const seconds = load.durationMs / 1000 + 1;
    const bound = 1 + BUDGET.ratio + (BUDGET.min_per_second * seconds) / outcomes.length;
    const amplification = doomed.count() / outcomes.length;
    expect(amplification).toBeLessThanOrEqual(bound);
    // Retries did happen (max_attempts 3 without a budget would be 3x): the budget stopped them.
    expect(amplification).toBeGreaterThan(1.1);
    const metrics = await scrape(mesh.adminPort(CLIENT));
    expect(
      total(metrics, 'sigil_proxy_upstream_retry_budget_exhausted_total', { service: 'doomed' }),
    ).toBeGreaterThan(0);
    // The app's 503s go to the caller as they were; whatever the proxy made itself says why.
    for (const o of outcomes.filter((o) => o.sigilError === undefined)) expect(o.endpoint).toBe('doomed');
  });

  it('opens the circuit of a service failing every request, answers circuit-open, and closes it through a probe', async () => {
    const breaker = mesh.app('breaker');
    breaker.set({ failShare: 1, failStatus: 503 });
    const port = mesh.port(CLIENT, 'breaker');
    const admin = mesh.adminPort(CLIENT);
    const circuitOf = async () => (await serviceOf(admin, 'breaker')).circuit;
    const failing = await drive(port, { rps: 50, durationMs: 600 });
    const open = failing.filter((o) => o.sigilError === 'circuit-open');
    expect(open.length).toBeGreaterThan(0);
    for (const o of open) expect(o.status).toBe(503);
    expect(await circuitOf()).toMatchObject({ state: 'open' });
    // The endpoint itself is not ejected: the circuit speaks for the service.
    const [endpoint] = await endpointsOf(admin, 'breaker');
    expect(endpoint).toMatchObject({ address: mesh.inbound('breaker'), state: 'healthy' });
    let metrics = await scrape(admin);
    expect(
      total(metrics, 'sigil_proxy_upstream_circuit_opened_total', { service: 'breaker' }),
    ).toBeGreaterThan(0);
    // While open, callers are answered without the app seeing them.
    const before = breaker.count();
    const during = await drive(port, { rps: 50, durationMs: 300 });
    expect(during.filter((o) => o.sigilError === 'circuit-open').length).toBeGreaterThan(0);
    expect(breaker.count() - before).toBeLessThanOrEqual(1);

    breaker.set({});
    await waitFor(
      async () => (await send(port)).status === 200,
      10_000,
      () => `traffic did not return: ${JSON.stringify(breaker.received.slice(-5))}`,
    );
    const after = await drive(port, { rps: 50, durationMs: 400 });
    expect(after.every((o) => o.status === 200 && o.endpoint === 'breaker')).toBe(true);
    expect(await circuitOf()).toMatchObject({ state: 'closed' });
    metrics = await scrape(admin);
    expect(
      total(metrics, 'sigil_proxy_upstream_circuit_opened_total', { service: 'breaker' }),
    ).toBeGreaterThan(0);
  });

  it('answers 503 overloaded at once past max_concurrent, without queueing', async () => {
    const limited = mesh.app('limited');
    limited.set({ latencyMs: 600 });
    const port = mesh.port(CLIENT, 'limited');
    const slow = send(port);
    await sleep(150);
    const refused = await send(port);
    expect(refused).toMatchObject({ status: 503, sigilError: 'overloaded' });
    expect(refused.latencyMs).toBeLessThan(300);
    expect(await slow).toMatchObject({ status: 200, endpoint: 'limited' });
    expect(limited.count()).toBe(1);
    const metrics = await scrape(mesh.adminPort(CLIENT));
    expect(total(metrics, 'sigil_proxy_upstream_limit_hits_total', { service: 'limited' })).toBeGreaterThan(
      0,
    );
    // The limit is on concurrency, not a rate: once the slow one is done, the next goes through.
    expect(await send(port)).toMatchObject({ status: 200, endpoint: 'limited' });
  });
});
