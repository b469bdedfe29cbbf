// HTTP/1.1 through an inbound/outbound pair over real sockets and real mTLS, with an app on
// loopback: header fidelity and identity headers, bodies, policy refusals, WebSocket upgrades, an
// upstream with the wrong SPIFFE ID, and SVID rotation under load.
import { connect as netConnect } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_ID,
  cleanups,
  headerPairs,
  leafHash,
  metricValue,
  RecordingAuthorizer,
  rawExchange,
  SERVER_ID,
  startHttpApp,
  startPair,
  tdA,
  useProxyTestHarness,
} from './pair.test-support.js';

useProxyTestHarness();

describe('HTTP/1.1 through an inbound/outbound pair', () => {
  it('keeps connections alive, preserves duplicates and case, drops hop-by-hop, replaces forged identity headers', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port });
    const request =
      'GET /hello?x=1 HTTP/1.1\r\nHost: app.local\r\nX-Dup: 1\r\nx-dup: 2\r\nMixed-Case: v\r\n' +
      'Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: x\r\n' +
      'X-Sigil-Peer-Id: spiffe://a.test/admin\r\nX-Forwarded-Client-Cert: By=x;URI=spiffe://a.test/admin\r\n\r\n';
    const responses = await rawExchange(pair.outbound.address.port, [request, request]);

    expect(responses).toHaveLength(2);
    for (const response of responses) {
      expect(response.head).toMatch(/^HTTP\/1\.1 200 OK/);
      // Response: duplicates and case kept, the header named in Connection dropped.
      expect(response.head).toContain('\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n');
      expect(response.head).toContain('\r\nX-Mixed-Case: Yes\r\n');
      expect(response.head).not.toContain('X-Hop-Resp');
      const seen = JSON.parse(response.body) as { rawHeaders: string[]; url: string };
      expect(seen.url).toBe('/hello?x=1');
      const pairs = headerPairs(seen.rawHeaders);
      // undici writes Host itself (lowercase); every other name keeps its case.
      expect(pairs).toContainEqual(['host', 'app.local']);
      expect(pairs.filter(([n]) => n.toLowerCase() === 'x-dup')).toEqual([
        ['X-Dup', '1'],
        ['x-dup', '2'],
      ]);
      expect(pairs).toContainEqual(['Mixed-Case', 'v']);
      const names = pairs.map(([n]) => n.toLowerCase());
      for (const hop of ['x-hop', 'keep-alive', 'proxy-authorization']) expect(names).not.toContain(hop);
      // Forged identity headers are gone; the verified ones are the only ones.
      expect(pairs.filter(([n]) => n.toLowerCase() === 'x-sigil-peer-id')).toEqual([
        ['x-sigil-peer-id', CLIENT_ID],
      ]);
      expect(pairs.filter(([n]) => n.toLowerCase() === 'x-forwarded-client-cert')).toEqual([
        [
          'x-forwarded-client-cert',
          `By=${SERVER_ID};Hash=${leafHash(pair.client.source.getSvid())};URI=${CLIENT_ID}`,
        ],
      ]);
    }
    // One app connection and one mTLS connection served both requests.
    expect(app.state.connections).toBe(1);
    expect(pair.server.logger.find('Stripped identity header sent by the caller')).toHaveLength(4);
    expect(pair.server.logger.find('Stripped identity header sent by the caller')[0]!.fields).toMatchObject({
      source_id: CLIENT_ID,
      destination_id: SERVER_ID,
    });
    expect(
      await metricValue(pair.server.registry, 'sigil_proxy_requests_total', {
        source_id: CLIENT_ID,
        destination_id: SERVER_ID,
        class: '2xx',
      }),
    ).toBe(2);
    expect(
      await metricValue(pair.client.registry, 'sigil_proxy_requests_total', {
        direction: 'outbound',
        class: '2xx',
      }),
    ).toBe(2);
  });

  it('relays request bodies, with content-length and chunked', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port });
    const base = `http://127.0.0.1:${pair.outbound.address.port}`;
    const fixed = await request(`${base}/a`, { method: 'POST', body: 'hello body' });
    expect(((await fixed.body.json()) as { body: string }).body).toBe('hello body');
    async function* parts() {
      yield 'chunk-1,';
      yield 'chunk-2';
    }
    const chunked = await request(`${base}/b`, { method: 'PUT', body: Readable.from(parts()) });
    expect(((await chunked.body.json()) as { body: string }).body).toBe('chunk-1,chunk-2');
  });

  it('answers 403 with x-sigil-error when the authorizer denies, logging both IDs and the rule', async () => {
    const app = await startHttpApp();
    const authorizer = new RecordingAuthorizer((r) => r.path === '/secret');
    const pair = await startPair({ protocol: 'http', appPort: app.port, authorizer });
    const base = `http://127.0.0.1:${pair.outbound.address.port}`;
    const denied = await request(`${base}/secret`, { method: 'DELETE' });
    expect(denied.statusCode).toBe(403);
    expect(denied.headers['x-sigil-error']).toBe('forbidden');
    expect(await denied.body.text()).toBe('sigil proxy: forbidden by policy\n');
    const allowed = await request(`${base}/open`);
    expect(allowed.statusCode).toBe(200);
    await allowed.body.dump();
    expect(app.state.requests.map((r) => r.url)).toEqual(['/open']);
    expect(authorizer.seen[0]).toMatchObject({
      principal: CLIENT_ID,
      port: app.port,
      protocol: 'http',
      method: 'DELETE',
      path: '/secret',
    });
    const [log] = pair.server.logger.find('Request denied by policy');
    expect(log!.fields).toMatchObject({
      source_id: CLIENT_ID,
      destination_id: SERVER_ID,
      rule: 'deny-all',
      reason: 'no rule allows it',
    });
    expect(
      await metricValue(pair.server.registry, 'sigil_proxy_authz_decisions_total', {
        rule: 'deny-all',
        result: 'deny',
      }),
    ).toBe(1);
  });

  it('pipes a WebSocket upgrade after authorization, with verified identity headers', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port });
    const socket = netConnect({ host: '127.0.0.1', port: pair.outbound.address.port });
    cleanups.push(() => void socket.destroy());
    socket.write(
      'GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Sigil-Peer-Id: forged\r\n\r\n',
    );
    let received = '';
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        if (received.includes('\r\n\r\n') && !received.includes('ping')) socket.write('ping-frame');
        if (received.includes('ping-frame')) resolve();
      });
    });
    expect(received).toMatch(/^HTTP\/1\.1 101 Switching Protocols/);
    const pairs = headerPairs(app.state.requests[0]!.rawHeaders);
    expect(pairs).toContainEqual(['Upgrade', 'websocket']);
    expect(pairs.filter(([n]) => n.toLowerCase() === 'x-sigil-peer-id')).toEqual([
      ['x-sigil-peer-id', CLIENT_ID],
    ]);
  });

  it('fails hard with 502 and x-sigil-error when the upstream presents an unexpected SPIFFE ID', async () => {
    const app = await startHttpApp();
    const pair = await startPair({
      protocol: 'http',
      appPort: app.port,
      serverIds: ['spiffe://a.test/other'],
    });
    const response = await request(`http://127.0.0.1:${pair.outbound.address.port}/x`);
    expect(response.statusCode).toBe(502);
    expect(response.headers['x-sigil-error']).toBe('upstream-identity-mismatch');
    await response.body.dump();
    expect(app.state.requests).toHaveLength(0);
    const [log] = pair.client.logger.find('Upstream identity refused');
    expect(log!.fields).toMatchObject({
      source_id: CLIENT_ID,
      destination_id: SERVER_ID,
      reason: 'server-id',
    });
    expect(
      await metricValue(pair.client.registry, 'sigil_proxy_tls_handshake_failures_total', {
        reason: 'server-id',
      }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('keeps serving with zero failures while both SVIDs rotate mid-stream, new connections using the new SVID', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port });
    const base = `http://127.0.0.1:${pair.outbound.address.port}`;
    let failures = 0;
    let done = 0;
    const newClient = tdA.mint('/client');
    const worker = async () => {
      for (let i = 0; i < 60; i++) {
        const response = await request(`${base}/r${i}`, {
          method: i % 2 ? 'POST' : 'GET',
          body: i % 2 ? 'x' : null,
        });
        await response.body.dump();
        if (response.statusCode !== 200) failures++;
        done++;
        if (done === 100) {
          pair.server.source.push(tdA.mint('/server'));
          pair.client.source.push(newClient);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(failures).toBe(0);
    expect(done).toBe(240);
    // After the rotation, the inbound saw the client's new leaf.
    const last = app.state.requests.at(-1)!;
    const xfcc = headerPairs(last.rawHeaders).find(([n]) => n === 'x-forwarded-client-cert')![1];
    expect(xfcc).toContain(`Hash=${leafHash(newClient)}`);
  });
});
