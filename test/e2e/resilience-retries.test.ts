// Retries through real sidecars (issue 11): a backend failing 30% of requests is hidden from the
// client within the retry budget; only idempotent requests (by method, Idempotency-Key, or a
// service that says so) are retried; a body over 64 KiB streams and is not; Retry-After is waited
// for. The apps count what reached them, so "not retried" means the app saw one request.
import { beforeEach, describe, expect, it } from 'vitest';
import { servicesYaml, useResilienceMesh } from '../support/resilience-mesh.js';
import { drive, scrape, send, share, total } from '../support/traffic.js';

const CLIENT = 'client';
const mesh = useResilienceMesh([
  { name: 'backend', uid: 1, apps: ['flaky', 'first'] },
  {
    name: CLIENT,
    uid: 65534,
    outbound: (m) =>
      servicesYaml([
        { name: 'flaky', server_ids: [m.id('backend')], endpoints: [m.inbound('flaky')] },
        { name: 'first', server_ids: [m.id('backend')], endpoints: [m.inbound('first')] },
        {
          name: 'anypost',
          server_ids: [m.id('backend')],
          endpoints: [m.inbound('first')],
          retries: { non_idempotent: true },
        },
      ]),
  },
]);

/** The retry budget's defaults (services-config.md): retries ≤ ratio × requests + floor per second. */
const BUDGET = { ratio: 0.2, minPerSecond: 10 };

beforeEach(() => {
  for (const app of ['flaky', 'first']) {
    mesh.app(app).set({});
    mesh.app(app).clear();
  }
});

describe('retries through the sidecar', () => {
  it('hides a backend that fails 30% of requests with 503, within the budget', async () => {
    const flaky = mesh.app('flaky');
    flaky.set({ failShare: 0.3, failStatus: 503 });
    // 30 req/s: a retry for every failure (0.3 / 0.7 ≈ 0.43 per request) fits 20% + 10/s.
    const load = { rps: 30, durationMs: 4_000 };
    const outcomes = await drive(mesh.port(CLIENT, 'flaky'), load);

    expect(share(outcomes, (o) => o.status === 200)).toBeGreaterThanOrEqual(0.99);
    const floor = BUDGET.minPerSecond * (load.durationMs / 1000);
    expect(flaky.count()).toBeGreaterThan(outcomes.length);
    expect(flaky.count()).toBeLessThanOrEqual(1.2 * outcomes.length + floor);
    // Every try of a retryable request is numbered, so the app (and the next hop) can tell.
    expect(flaky.count((r) => r.attempt === '1')).toBe(outcomes.length);
    expect(flaky.count((r) => r.attempt === '2')).toBeGreaterThan(0);
    const metrics = await scrape(mesh.adminPort(CLIENT));
    expect(total(metrics, 'sigil_proxy_upstream_retries_total', { service: 'flaky' })).toBe(
      flaky.count() - outcomes.length,
    );
    expect(
      total(metrics, 'sigil_proxy_upstream_requests_total', { service: 'flaky' }),
    ).toBeGreaterThanOrEqual(outcomes.length);
  });

  it('never retries a POST without an Idempotency-Key, even once', async () => {
    const first = mesh.app('first');
    first.set({ failFirstTry: true });
    const res = await send(mesh.port(CLIENT, 'first'), { method: 'POST', body: Buffer.from('order=1') });
    // The app's own 503, passed through unaltered: no x-sigil-error.
    expect(res).toMatchObject({ status: 503, endpoint: 'first', sigilError: undefined });
    expect(first.count()).toBe(1);
    expect(first.received[0]).toMatchObject({ method: 'POST', bodyBytes: 7 });
  });

  it('retries a POST that carries an Idempotency-Key, and any POST when the service allows it', async () => {
    const first = mesh.app('first');
    first.set({ failFirstTry: true });
    const keyed = await send(mesh.port(CLIENT, 'first'), {
      method: 'POST',
      headers: { 'idempotency-key': 'k-123' },
      body: Buffer.from('order=1'),
    });
    expect(keyed).toMatchObject({ status: 200, endpoint: 'first' });
    expect(first.received.map((r) => [r.method, r.attempt, r.idempotencyKey, r.bodyBytes])).toEqual([
      ['POST', '1', 'k-123', 7],
      ['POST', '2', 'k-123', 7],
    ]);

    first.clear();
    const allowed = await send(mesh.port(CLIENT, 'anypost'), { method: 'POST', body: Buffer.from('x') });
    expect(allowed).toMatchObject({ status: 200, endpoint: 'first' });
    expect(first.received.map((r) => r.attempt)).toEqual(['1', '2']);
  });

  it('replays a body of 60 KiB but streams a 100 KiB body and does not retry it', async () => {
    const first = mesh.app('first');
    first.set({ failFirstTry: true });
    const small = await send(mesh.port(CLIENT, 'first'), { method: 'PUT', body: Buffer.alloc(60 * 1024, 1) });
    expect(small).toMatchObject({ status: 200, endpoint: 'first' });
    expect(first.received.map((r) => r.bodyBytes)).toEqual([60 * 1024, 60 * 1024]);

    first.clear();
    const large = await send(mesh.port(CLIENT, 'first'), {
      method: 'PUT',
      body: Buffer.alloc(100 * 1024, 1),
    });
    expect(large).toMatchObject({ status: 503, endpoint: 'first', sigilError: undefined });
    expect(first.count()).toBe(1);
    expect(first.received[0]!.bodyBytes).toBe(100 * 1024);
  });

  it('waits for Retry-After on a 503 before the next try', async () => {
    const first = mesh.app('first');
    first.set({ failFirstTry: true, retryAfter: '1' });
    const res = await send(mesh.port(CLIENT, 'first'));
    expect(res).toMatchObject({ status: 200, endpoint: 'first' });
    expect(first.count()).toBe(2);
    const [one, two] = first.received;
    // One second, less the clock's coarseness between the two processes' timestamps.
    expect(two!.atMs - one!.atMs).toBeGreaterThanOrEqual(950);
  });
});
