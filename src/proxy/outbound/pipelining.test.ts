// Pipelining through a real pair (real mTLS, the inbound sidecar's node:http server answering in
// order): requests queued behind a slow one wait for it while the stall bound is long, and are
// moved to another connection within the bound when it is short; unsafe requests never wait.
import { createServer } from 'node:http';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { listen, metricValue, startPair, useProxyTestHarness } from '../pair.test-support.js';

useProxyTestHarness();

/** How long the app holds `/slow`: far beyond any stall bound tested here. */
const SLOW_MS = 2_500;

/** An app that answers `/slow` after SLOW_MS and anything else at once, counting what it served. */
async function startSlowApp() {
  const served: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = () => {
        served.push(`${req.method} ${req.url}`);
        res.writeHead(200, { 'content-length': String(Buffer.byteLength(req.url ?? '')) });
        res.end(req.url);
      };
      if (req.url === '/slow') setTimeout(answer, SLOW_MS);
      else answer();
    });
  });
  return { port: await listen(server), served };
}

/** Sends one slow GET, then `fast` requests behind it; resolves with each fast one's time to its body. */
async function slowThenFast(port: number, fast: { method: string; body?: string }[]) {
  const origin = `http://127.0.0.1:${port}`;
  const slow = request(`${origin}/slow`);
  // Let the slow request reach the lane first, so the fast ones queue behind it.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const startedMs = performance.now();
  const times = await Promise.all(
    fast.map(async ({ method, body }, i) => {
      const res = await request(`${origin}/fast/${i}`, { method: method as 'GET', body });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe(`/fast/${i}`);
      return performance.now() - startedMs;
    }),
  );
  const slowRes = await slow;
  expect(await slowRes.body.text()).toBe('/slow');
  return times;
}

describe('pipelining on the sidecar-to-sidecar hop', () => {
  it('pipelines safe requests: behind a slow one they wait while the stall bound is long', async () => {
    const app = await startSlowApp();
    const pair = await startPair({
      protocol: 'http',
      appPort: app.port,
      pipelining: { depth: 4, connections: 1, stallMs: 60_000 },
    });
    const times = await slowThenFast(pair.outbound.address.port, [{ method: 'GET' }, { method: 'GET' }]);
    // Head-of-line blocking: the fast requests were on the slow one's connection.
    for (const ms of times) expect(ms).toBeGreaterThan(SLOW_MS - 200);
  });

  it('moves the requests queued behind a stalled one to another connection within the bound', async () => {
    const app = await startSlowApp();
    const stallMs = 100;
    const pair = await startPair({
      protocol: 'http',
      appPort: app.port,
      pipelining: { depth: 4, connections: 1, stallMs },
    });
    const times = await slowThenFast(pair.outbound.address.port, [
      { method: 'GET' },
      { method: 'OPTIONS' },
      { method: 'GET' },
    ]);
    // Moved within 1.25x the stall bound, plus a new mTLS connection and the app's answer.
    for (const ms of times) expect(ms).toBeLessThan(stallMs * 1.25 + 600);
    expect(
      pair.client.logger.find(
        'Pipelined connection stalled; the requests queued behind its oldest were sent on other connections',
      ),
    ).toHaveLength(1);
    expect(
      await metricValue(pair.client.registry, 'sigil_proxy_upstream_pipelining_moved_total', {
        service: 'out',
      }),
    ).toBe(3);
    // The moved requests reached the app twice (their pipelined copies were answered and dropped).
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(app.served.filter((s) => s === 'GET /fast/0')).toHaveLength(2);
    expect(app.served.filter((s) => s === 'GET /slow')).toHaveLength(1);
  });

  it('never pipelines requests with a body, unsafe methods or HEAD: they do not wait behind a slow one', async () => {
    const app = await startSlowApp();
    const pair = await startPair({
      protocol: 'http',
      appPort: app.port,
      pipelining: { depth: 4, connections: 1, stallMs: 60_000 },
    });
    const times = await slowThenFast(pair.outbound.address.port, [
      { method: 'POST', body: 'x' },
      { method: 'DELETE' },
      { method: 'PUT', body: 'y' },
    ]);
    for (const ms of times) expect(ms).toBeLessThan(SLOW_MS / 2);
    const head = await request(`http://127.0.0.1:${pair.outbound.address.port}/fast/h`, { method: 'HEAD' });
    expect(head.statusCode).toBe(200);
    await head.body.dump();
  });
});
