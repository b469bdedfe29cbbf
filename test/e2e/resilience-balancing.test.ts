// Load balancing and hot reload of services through real sidecars (issue 11): with one endpoint of
// three 50 ms slower, P2C over peak-EWMA sends it clearly less than round robin's third; an edit to
// the sidecar's config file adds an endpoint without a restart, and a broken edit keeps the old one.
import { beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/agent-harness.js';
import { type ServiceSpec, servicesYaml, useResilienceMesh } from '../support/resilience-mesh.js';
import { drive, endpointsOf, type Outcome, scrape, send, total } from '../support/traffic.js';

const CLIENT = 'client';
const APPS = ['l0', 'l1', 'slow'];
const BACKEND_ID = 'spiffe://example.org/backend-proxy';

/** The client's services; `reload` grows with the reload test's edits. */
function services(inbound: (app: string) => string, reload: readonly string[], bad = {}): ServiceSpec[] {
  const all = APPS.map(inbound);
  return [
    // No slow start for round robin: its ramp weights endpoints by when each was first seen, which
    // moves the slow one's share off a third by chance; the comparison wants a plain rotation.
    {
      name: 'rr',
      server_ids: [BACKEND_ID],
      endpoints: all,
      load_balancer: { policy: 'round-robin', slow_start: 0 },
    },
    { name: 'p2c', server_ids: [BACKEND_ID], endpoints: all, load_balancer: { policy: 'p2c-ewma' } },
    {
      name: 'reload',
      server_ids: [BACKEND_ID],
      endpoints: reload.map(inbound),
      // Round robin at full weight at once, so a few requests show every endpoint in the set.
      load_balancer: { policy: 'round-robin', slow_start: 0 },
      ...bad,
    },
  ];
}

const mesh = useResilienceMesh([
  { name: 'backend', uid: 1, apps: APPS },
  { name: CLIENT, uid: 65534, outbound: (m) => servicesYaml(services(m.inbound, ['l0'])) },
]);

beforeAll(() => {
  mesh.app('slow').set({ latencyMs: 50 });
});

/** The share of 200 answers that came from the slow endpoint. */
function slowShare(outcomes: readonly Outcome[]): number {
  const ok = outcomes.filter((o) => o.status === 200);
  return ok.filter((o) => o.endpoint === 'slow').length / ok.length;
}

describe('load balancing through the sidecar', () => {
  it('sends a 50 ms slower endpoint clearly less traffic with p2c-ewma than with round robin', async () => {
    const load = { rps: 80, durationMs: 2_500 };
    const rr = await drive(mesh.port(CLIENT, 'rr'), load);
    const p2c = await drive(mesh.port(CLIENT, 'p2c'), load);
    for (const run of [rr, p2c]) expect(run.every((o) => o.status === 200)).toBe(true);
    const rrShare = slowShare(rr);
    const p2cShare = slowShare(p2c);
    expect(rrShare).toBeGreaterThan(0.28);
    expect(rrShare).toBeLessThan(0.39);
    expect(p2cShare).toBeLessThan(rrShare / 2);
    // Balancer choices are counted per endpoint, and agree with what the apps saw.
    const metrics = await scrape(mesh.adminPort(CLIENT));
    const picks = (service: string, app: string) =>
      total(metrics, 'sigil_proxy_upstream_balancer_picks_total', { service, endpoint: mesh.inbound(app) });
    expect(picks('rr', 'slow')).toBe(rr.filter((o) => o.endpoint === 'slow').length);
    expect(picks('p2c', 'slow')).toBe(p2c.filter((o) => o.endpoint === 'slow').length);
  });
});

describe('services reload from the config file', () => {
  const answeredBy = async (port: number): Promise<Set<string | undefined>> =>
    new Set((await drive(port, { rps: 50, durationMs: 400 })).map((o) => o.endpoint));

  it('adds an endpoint when the file gains one, without a restart', async () => {
    const port = mesh.port(CLIENT, 'reload');
    expect(await answeredBy(port)).toEqual(new Set(['l0']));
    mesh.rewriteOutbound(CLIENT, servicesYaml(services(mesh.inbound, ['l0', 'l1'])));
    await waitFor(
      async () => (await answeredBy(port)).has('l1'),
      20_000,
      () => `l1 never answered after the edit:\n${mesh.sidecar(CLIENT).logs().slice(-2000)}`,
    );
    expect((await endpointsOf(mesh.adminPort(CLIENT), 'reload')).map((e) => e.address).sort()).toEqual(
      [mesh.inbound('l0'), mesh.inbound('l1')].sort(),
    );
    expect(mesh.sidecar(CLIENT).lines('Services reloaded').length).toBeGreaterThan(0);
    // Same process, same listener: the port did not change.
    expect((await send(port)).status).toBe(200);
    expect(mesh.sidecar(CLIENT).child.exitCode).toBeNull();
  });

  it('keeps the previous services when an edit is broken, and says what is wrong', async () => {
    const port = mesh.port(CLIENT, 'reload');
    const bad = { load_balancer: { policy: 'least-magic' } };
    mesh.rewriteOutbound(CLIENT, servicesYaml(services(mesh.inbound, ['l0'], bad)));
    await waitFor(
      () =>
        mesh
          .sidecar(CLIENT)
          .lines('Config file rejected; the previous config stays in force')
          .some((line) => String(line.err).includes('least-magic')),
      15_000,
      () => `the broken edit was not reported:\n${mesh.sidecar(CLIENT).logs().slice(-2000)}`,
    );
    // Still both endpoints: the broken file (which also drops l1) was not applied, not even in part.
    expect(await answeredBy(port)).toEqual(new Set(['l0', 'l1']));
    expect((await endpointsOf(mesh.adminPort(CLIENT), 'reload')).length).toBe(2);
    // A good edit after the broken one applies again.
    mesh.rewriteOutbound(CLIENT, servicesYaml(services(mesh.inbound, ['l1'])));
    await waitFor(
      async () => (await answeredBy(port)).size === 1 && (await answeredBy(port)).has('l1'),
      20_000,
      () => 'the good edit after a broken one did not apply',
    );
  });
});
