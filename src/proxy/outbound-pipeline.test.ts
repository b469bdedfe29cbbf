// The outbound request pipeline in a real sidecar pair (real sockets, real mTLS): a layer placed in
// the outbound stack sees every request the app sends, in order and with what it sent, and what a
// layer answers itself reaches the app as status + x-sigil-error while the app's own answers pass
// unaltered.
import { Readable } from 'node:stream';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { ProxyError } from './errors.js';
import { startInbound } from './inbound/index.js';
import { startOutbound } from './outbound/index.js';
import {
  cleanups,
  makeSide,
  metricValue,
  RecordingAuthorizer,
  rawExchange,
  SERVER_ID,
  startHttpApp,
  tdA,
  useProxyTestHarness,
} from './pair.test-support.js';
import type { Layer, ProxyRequest } from './resilience/index.js';

useProxyTestHarness();

/** An inbound/outbound pair whose outbound stack has `outerLayers` around it. */
async function startPipelinePair(appPort: number, outerLayers: readonly Layer[]) {
  const server = makeSide(tdA.mint('/server'));
  const client = makeSide(tdA.mint('/client'));
  const inbound = await startInbound({
    name: 'in',
    listen: { host: '127.0.0.1', port: 0 },
    protocol: 'http',
    app: { host: '127.0.0.1', port: appPort },
    mode: 'strict',
    identity: server.identity,
    authorizer: new RecordingAuthorizer(),
    metrics: server.metrics,
    logger: server.logger,
  });
  cleanups.push(() => inbound.close());
  const outbound = await startOutbound({
    name: 'out',
    listen: { host: '127.0.0.1', port: 0 },
    protocol: 'http',
    upstream: { host: '127.0.0.1', port: inbound.address.port },
    serverIds: [SERVER_ID],
    identity: client.identity,
    metrics: client.metrics,
    logger: client.logger,
    outerLayers,
  });
  cleanups.push(() => outbound.close());
  return { client, base: `http://127.0.0.1:${outbound.address.port}` };
}

describe('the outbound request pipeline in a sidecar pair', () => {
  it('runs every request the app sends through a layer in the stack, the responses unchanged', async () => {
    const app = await startHttpApp();
    const seen: { method: string; path: string; hasBody: boolean; status: number }[] = [];
    const recording: Layer = (next) => async (req: ProxyRequest, signal) => {
      const response = await next(req, signal);
      seen.push({
        method: req.method,
        path: req.path,
        hasBody: req.body !== null,
        status: response.statusCode,
      });
      return response;
    };
    const { base } = await startPipelinePair(app.port, [recording]);

    const posted = await request(`${base}/orders?x=1`, { method: 'POST', body: 'hello body' });
    expect(JSON.parse(await posted.body.text())).toMatchObject({ method: 'POST', body: 'hello body' });
    async function* parts() {
      yield 'chunk-1,';
      yield 'chunk-2';
    }
    const chunked = await request(`${base}/stream`, { method: 'PUT', body: Readable.from(parts()) });
    expect(JSON.parse(await chunked.body.text())).toMatchObject({ body: 'chunk-1,chunk-2' });
    // Three on one keep-alive connection, raw.
    const port = Number(new URL(base).port);
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: app.local\r\n\r\n`;
    const raw = await rawExchange(port, [get('/a'), get('/b'), get('/c')]);
    expect(raw.map((r) => r.head.split('\r\n')[0])).toEqual(Array(3).fill('HTTP/1.1 200 OK'));
    for (const r of raw) expect(r.head).toContain('\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n');

    expect(seen).toEqual([
      { method: 'POST', path: '/orders?x=1', hasBody: true, status: 200 },
      { method: 'PUT', path: '/stream', hasBody: true, status: 200 },
      { method: 'GET', path: '/a', hasBody: false, status: 200 },
      { method: 'GET', path: '/b', hasBody: false, status: 200 },
      { method: 'GET', path: '/c', hasBody: false, status: 200 },
    ]);
    expect(app.state.requests.map((r) => r.url)).toEqual(['/orders?x=1', '/stream', '/a', '/b', '/c']);
  });

  it('answers what a layer refuses with its status and x-sigil-error, before the upstream sees it', async () => {
    const app = await startHttpApp();
    const shedding: Layer = (next) => async (req, signal) => {
      if (req.path.startsWith('/shed'))
        throw new ProxyError('overloaded', 'proxy: upstream "out" is overloaded');
      return next(req, signal);
    };
    const { client, base } = await startPipelinePair(app.port, [shedding]);

    const refused = await request(`${base}/shed/1`, { method: 'POST', body: 'dropped' });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['x-sigil-error']).toBe('overloaded');
    expect(await refused.body.text()).toBe('sigil proxy: overloaded\n');
    const served = await request(`${base}/kept`);
    expect(served.statusCode).toBe(200);
    expect(served.headers['x-sigil-error']).toBeUndefined();
    await served.body.text();

    expect(app.state.requests.map((r) => r.url)).toEqual(['/kept']);
    const labels = { listener: 'out', direction: 'outbound' };
    expect(
      await metricValue(client.registry, 'sigil_proxy_requests_total', { ...labels, class: '5xx' }),
    ).toBe(1);
  });
});
