// Inbound + outbound sidecars over real sockets and real mTLS, with apps on loopback.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import { createServer as createNetServer, connect as netConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { encodePem } from '../spiffe/pem.js';
import { startInbound } from './inbound/index.js';
import {
  CLIENT_ID,
  cleanups,
  headerPairs,
  leafHash,
  listen,
  makeSide,
  metricValue,
  RecordingAuthorizer,
  rawExchange,
  rogueA,
  SERVER_ID,
  startEchoApp,
  startHttpApp,
  startPair,
  tdA,
  tdB,
  useProxyTestHarness,
} from './pair.test-support.js';
import type { TestSvid } from './testing.test-support.js';

useProxyTestHarness();
const run = promisify(execFile);

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

describe('opaque pipes', () => {
  it('carries TCP both ways, half-close included', async () => {
    const appPort = await startEchoApp();
    const pair = await startPair({ protocol: 'tcp', appPort });
    const socket = netConnect({ host: '127.0.0.1', port: pair.outbound.address.port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const payload = Buffer.alloc(256 * 1024, 'z');
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => resolve());
      socket.on('error', reject);
      socket.end(payload);
    });
    socket.destroy();
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    expect(
      await metricValue(pair.server.registry, 'sigil_proxy_tcp_connections_total', {
        source_id: CLIENT_ID,
        destination_id: SERVER_ID,
      }),
    ).toBe(1);
  });

  it('closes a TCP connection the authorizer denies, before the app sees it', async () => {
    let appConnections = 0;
    const appServer = createNetServer((s) => {
      appConnections++;
      s.end();
    });
    const appPort = await listen(appServer);
    const pair = await startPair({
      protocol: 'tcp',
      appPort,
      authorizer: new RecordingAuthorizer(() => true),
    });
    const socket = netConnect({ host: '127.0.0.1', port: pair.outbound.address.port });
    socket.write('hello');
    const received: Buffer[] = [];
    await new Promise<void>((resolve) => {
      socket.on('data', (c: Buffer) => received.push(c));
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    });
    expect(received).toHaveLength(0);
    expect(appConnections).toBe(0);
    expect(pair.server.logger.find('Request denied by policy')[0]!.fields).toMatchObject({
      source_id: CLIENT_ID,
      protocol: 'tcp',
    });
  });

  it('refuses a TCP upstream with the wrong SPIFFE ID before sending app data', async () => {
    let appBytes = 0;
    const appServer = createNetServer((s) => s.on('data', (c: Buffer) => (appBytes += c.length)));
    const appPort = await listen(appServer);
    const pair = await startPair({ protocol: 'tcp', appPort, serverIds: ['spiffe://a.test/db'] });
    const socket = netConnect({ host: '127.0.0.1', port: pair.outbound.address.port });
    socket.write('secret app data');
    await new Promise<void>((resolve) => {
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    });
    expect(appBytes).toBe(0);
    expect(pair.client.logger.find('Upstream identity refused')[0]!.fields).toMatchObject({
      destination_id: SERVER_ID,
      reason: 'server-id',
    });
  });

  it('carries HTTP/2 (h2c) inside the pipe, streaming both ways on one session', async () => {
    const h2 = createH2Server();
    h2.on('stream', (stream, headers) => {
      if (headers[':path'] === '/stream') {
        // A gRPC-style bidirectional stream: answer every message as it arrives.
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.on('data', (chunk: Buffer) => stream.write(`echo:${chunk}`));
        stream.on('end', () => stream.end());
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end(`hello ${headers[':path']}`);
    });
    const appPort = await listen(h2 as unknown as Server);
    const pair = await startPair({ protocol: 'http2', appPort });
    const session = h2connect(`http://127.0.0.1:${pair.outbound.address.port}`);
    cleanups.push(() => void session.destroy());
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': path });
        let body = '';
        req.on('data', (c: Buffer) => (body += c));
        req.on('end', () => resolve(body));
        req.on('error', reject);
        req.end();
      });
    expect(await Promise.all([get('/a'), get('/b'), get('/c')])).toEqual([
      'hello /a',
      'hello /b',
      'hello /c',
    ]);
    const stream = session.request({ ':path': '/stream', ':method': 'POST' });
    const replies: string[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (c: Buffer) => {
        replies.push(c.toString());
        if (replies.length < 3) stream.write(`m${replies.length + 1}`);
        else stream.end();
      });
      stream.on('end', () => resolve());
      stream.on('error', reject);
      stream.write('m1');
    });
    expect(replies).toEqual(['echo:m1', 'echo:m2', 'echo:m3']);
    expect(
      await metricValue(pair.server.registry, 'sigil_proxy_tcp_connections_total', { source_id: CLIENT_ID }),
    ).toBe(1);
  });
});

describe('a policy change on open opaque connections', () => {
  it('closes the TCP pipes the new policy denies, and HTTP/2 pipes that must now be relayed per stream', async () => {
    const tcpPair = await startPair({ protocol: 'tcp', appPort: await startEchoApp() });
    const socket = netConnect({ host: '127.0.0.1', port: tcpPair.outbound.address.port });
    cleanups.push(() => void socket.destroy());
    const echoed = await new Promise<string>((resolve, reject) => {
      socket.once('data', (c: Buffer) => resolve(c.toString()));
      socket.on('error', reject);
      socket.write('ping');
    });
    expect(echoed).toBe('ping');
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // Still allowed: reauthorizing leaves it alone.
    tcpPair.inbound.reauthorize();
    (tcpPair.authorizer as RecordingAuthorizer).deny = (r) => r.principal === CLIENT_ID;
    tcpPair.inbound.reauthorize();
    await closed;
    expect(tcpPair.server.logger.find('Request denied by policy')).toHaveLength(1);

    const h2 = createH2Server();
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const authorizer = new RecordingAuthorizer();
    const h2Pair = await startPair({
      protocol: 'http2',
      appPort: await listen(h2 as unknown as Server),
      authorizer,
    });
    const session = h2connect(`http://127.0.0.1:${h2Pair.outbound.address.port}`);
    cleanups.push(() => void session.destroy());
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ':path': '/before' });
      req.on('data', () => {});
      req.on('end', () => resolve());
      req.on('error', reject);
      req.end();
    });
    expect(authorizer.seen.map((r) => r.protocol)).toEqual(['tcp']);
    const sessionClosed = new Promise<void>((resolve) => session.on('close', () => resolve()));
    session.on('error', () => {});
    authorizer.needsDetails = true;
    h2Pair.inbound.reauthorize();
    await sessionClosed;
    expect(
      h2Pair.server.logger.find('Closing an HTTP/2 pipe: the policy now decides per request'),
    ).toHaveLength(1);
  });
});

describe('HTTP/2 relayed per stream (policy needs method or path)', () => {
  /** An h2c app: /unary answers with its path and the identity headers it got; /grpc streams with trailers. */
  async function startH2App() {
    const seen: string[] = [];
    const h2 = createH2Server();
    h2.on('stream', (stream, headers) => {
      seen.push(String(headers[':path']));
      if (headers[':path'] === '/grpc') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'done' }));
        stream.on('data', (chunk: Buffer) => stream.write(`echo:${chunk}`));
        stream.on('end', () => stream.end());
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(
        JSON.stringify({
          path: headers[':path'],
          method: headers[':method'],
          peer: headers['x-sigil-peer-id'],
          xfcc: headers['x-forwarded-client-cert'],
        }),
      );
    });
    const sessions = new Set<{ destroy(): void }>();
    h2.on('session', (session) => sessions.add(session));
    const port = await listen(h2 as unknown as Server);
    const stop = () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        h2.close(() => resolve());
      });
    return { port, seen, stop };
  }

  it('authorizes every stream by method and path, sets identity headers, and carries trailers', async () => {
    const app = await startH2App();
    const authorizer = new RecordingAuthorizer((r) => r.path === '/denied', true);
    const pair = await startPair({ protocol: 'http2', appPort: app.port, authorizer });
    const session = h2connect(`http://127.0.0.1:${pair.outbound.address.port}`);
    cleanups.push(() => void session.destroy());
    const call = (path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; error: unknown; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': path, ...headers });
        let body = '';
        let status = 0;
        let error: unknown;
        req.on('response', (h) => {
          status = Number(h[':status']);
          error = h['x-sigil-error'];
        });
        req.on('data', (c: Buffer) => (body += c));
        req.on('end', () => resolve({ status, error, body }));
        req.on('error', reject);
        req.end();
      });

    const allowed = await call('/unary', { 'x-sigil-peer-id': 'spiffe://a.test/forged' });
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body)).toEqual({
      path: '/unary',
      method: 'GET',
      peer: CLIENT_ID,
      xfcc: `By=${SERVER_ID};Hash=${leafHash(pair.client.source.getSvid())};URI=${CLIENT_ID}`,
    });
    expect(pair.server.logger.find('Stripped identity header sent by the caller')).toHaveLength(1);

    const denied = await call('/denied');
    expect(denied).toMatchObject({ status: 403, error: 'forbidden' });
    expect(app.seen).not.toContain('/denied');

    // A gRPC-style bidirectional stream on the same session, trailers included.
    const stream = session.request({
      ':path': '/grpc',
      ':method': 'POST',
      'content-type': 'application/grpc',
    });
    const replies: string[] = [];
    const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let got: Record<string, unknown> = {};
      stream.on('trailers', (t) => (got = t));
      stream.on('data', (c: Buffer) => {
        replies.push(c.toString());
        if (replies.length < 3) stream.write(`m${replies.length + 1}`);
        else stream.end();
      });
      stream.on('end', () => resolve(got));
      stream.on('error', reject);
      stream.write('m1');
    });
    expect(replies).toEqual(['echo:m1', 'echo:m2', 'echo:m3']);
    expect(trailers).toMatchObject({ 'grpc-status': '0', 'grpc-message': 'done' });

    expect(authorizer.seen.map((r) => `${r.protocol} ${r.method} ${r.path}`)).toEqual([
      'http GET /unary',
      'http GET /denied',
      'http POST /grpc',
    ]);
    const requests = (cls: string) =>
      metricValue(pair.server.registry, 'sigil_proxy_requests_total', { source_id: CLIENT_ID, class: cls });
    expect(await requests('2xx')).toBe(2);
    expect(await requests('4xx')).toBe(1);
    // Not an opaque pipe: nothing was counted as one.
    expect(await metricValue(pair.server.registry, 'sigil_proxy_tcp_connections_total', {})).toBe(0);
  });

  it('answers 502 when the app is down, and keeps the caller session usable', async () => {
    const app = await startH2App();
    const pair = await startPair({
      protocol: 'http2',
      appPort: app.port,
      authorizer: new RecordingAuthorizer(() => false, true),
    });
    const session = h2connect(`http://127.0.0.1:${pair.outbound.address.port}`);
    cleanups.push(() => void session.destroy());
    const status = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': path });
        let got = 0;
        req.on('response', (h) => (got = Number(h[':status'])));
        req.on('data', () => {});
        req.on('end', () => resolve(got));
        req.on('error', reject);
        req.end();
      });
    expect(await status('/one')).toBe(200);
    // Stop the app: the relay's session to it closes and new streams cannot reach it.
    await app.stop();
    expect(await status('/two')).toBe(502);
    expect(pair.server.logger.find('Request to the app failed').length).toBeGreaterThan(0);
  });
});

describe('inbound client authentication', () => {
  async function startInboundOnly(mode: 'strict' | 'permissive', protocol: 'http' | 'tcp' = 'http') {
    const app = await startHttpApp();
    const server = makeSide(tdA.mint('/server'));
    const authorizer = new RecordingAuthorizer();
    const inbound = await startInbound({
      name: 'in',
      listen: { host: '127.0.0.1', port: 0 },
      protocol,
      app: { host: '127.0.0.1', port: app.port },
      mode,
      identity: server.identity,
      authorizer,
      metrics: server.metrics,
      logger: server.logger,
    });
    cleanups.push(() => inbound.close());
    return { app, server, inbound, authorizer };
  }

  /** Connects with `svid` (or no certificate) and reports whether an HTTP request got an answer. */
  async function tryClient(port: number, svid: TestSvid | null): Promise<{ answered: boolean }> {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ...(svid && {
        key: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        cert: encodePem('CERTIFICATE', svid.certificates[0]!),
      }),
    });
    let answer = '';
    await new Promise<void>((resolve) => {
      socket.on('secureConnect', () =>
        socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      socket.on('data', (c: Buffer) => (answer += c));
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    });
    return { answered: answer.startsWith('HTTP/1.1 200') };
  }

  it.each([
    ['no certificate', () => null, 'no-certificate'],
    ['a certificate from another trust domain', () => tdB.mint('/client'), 'no-bundle'],
    [
      'an expired certificate',
      () => tdA.mint('/client', { notBeforeMs: Date.now() - 7_200_000, notAfterMs: Date.now() - 3_600_000 }),
      'expired',
    ],
    ['a certificate from a CA not in the bundle', () => rogueA.mint('/client'), 'no-path'],
  ])('refuses a client with %s', async (_what, svid, reason) => {
    const { inbound, server, app } = await startInboundOnly('strict');
    expect(await tryClient(inbound.address.port, svid())).toEqual({ answered: false });
    expect(app.state.requests).toHaveLength(0);
    expect(
      await metricValue(server.registry, 'sigil_proxy_tls_handshake_failures_total', {
        direction: 'inbound',
        reason,
      }),
    ).toBe(1);
    const [log] = server.logger.find('Client certificate refused');
    expect(log!.fields).toMatchObject({ reason, destination_id: SERVER_ID });
  });

  it('accepts a valid client certificate directly', async () => {
    const { inbound, authorizer } = await startInboundOnly('strict');
    expect(await tryClient(inbound.address.port, tdA.mint('/direct'))).toEqual({ answered: true });
    expect(authorizer.seen[0]!.principal).toBe('spiffe://a.test/direct');
  });

  it('permissive mode accepts plaintext with principal null, strips forged identity, and counts it', async () => {
    const { inbound, server, app, authorizer } = await startInboundOnly('permissive');
    const [response] = await rawExchange(inbound.address.port, [
      'GET /plain HTTP/1.1\r\nHost: x\r\nX-Sigil-Peer-Id: spiffe://a.test/admin\r\n\r\n',
    ]);
    expect(response!.head).toMatch(/^HTTP\/1\.1 200/);
    expect(authorizer.seen[0]!.principal).toBeNull();
    const names = headerPairs(app.state.requests[0]!.rawHeaders).map(([n]) => n.toLowerCase());
    expect(names).not.toContain('x-sigil-peer-id');
    expect(names).not.toContain('x-forwarded-client-cert');
    expect(
      await metricValue(server.registry, 'sigil_proxy_plaintext_connections_total', { result: 'accepted' }),
    ).toBe(1);
    // TLS still works on the same port.
    expect(await tryClient(inbound.address.port, tdA.mint('/client'))).toEqual({ answered: true });
  });

  it('permissive mode pipes plaintext TCP too', async () => {
    const appPort = await startEchoApp();
    const server = makeSide(tdA.mint('/server'));
    const inbound = await startInbound({
      name: 'in',
      listen: { host: '127.0.0.1', port: 0 },
      protocol: 'tcp',
      app: { host: '127.0.0.1', port: appPort },
      mode: 'permissive',
      identity: server.identity,
      authorizer: new RecordingAuthorizer(),
      metrics: server.metrics,
      logger: server.logger,
    });
    cleanups.push(() => inbound.close());
    const socket = netConnect({ host: '127.0.0.1', port: inbound.address.port });
    const echoed = await new Promise<string>((resolve) => {
      socket.once('data', (c: Buffer) => resolve(c.toString()));
      socket.write('plain bytes');
    });
    socket.destroy();
    expect(echoed).toBe('plain bytes');
  });

  it('strict mode refuses plaintext and counts it', async () => {
    const { inbound, server, app } = await startInboundOnly('strict');
    const socket = netConnect({ host: '127.0.0.1', port: inbound.address.port });
    let answer = '';
    await new Promise<void>((resolve) => {
      socket.on('data', (c: Buffer) => (answer += c));
      socket.on('close', () => resolve());
      socket.on('error', () => {});
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    expect(answer).toBe('');
    expect(app.state.requests).toHaveLength(0);
    expect(
      await metricValue(server.registry, 'sigil_proxy_plaintext_connections_total', { result: 'refused' }),
    ).toBe(1);
  });
});

describe('real clients', () => {
  it('openssl s_client with a client SVID gets through the inbound listener', async () => {
    const app = await startHttpApp();
    const server = makeSide(tdA.mint('/server'));
    const inbound = await startInbound({
      name: 'in',
      listen: { host: '127.0.0.1', port: 0 },
      protocol: 'http',
      app: { host: '127.0.0.1', port: app.port },
      mode: 'strict',
      identity: server.identity,
      authorizer: new RecordingAuthorizer(),
      metrics: server.metrics,
      logger: server.logger,
    });
    cleanups.push(() => inbound.close());
    const dir = mkdtempSync(join(tmpdir(), 'sigil-proxy-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const svid = tdA.mint('/openssl');
    writeFileSync(join(dir, 'key.pem'), svid.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'cert.pem'), encodePem('CERTIFICATE', svid.certificates[0]!));
    writeFileSync(join(dir, 'ca.pem'), encodePem('CERTIFICATE', tdA.bundle.x509Authorities[0]!));
    const child = spawn(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${inbound.address.port}`,
        '-cert',
        join(dir, 'cert.pem'),
        '-key',
        join(dir, 'key.pem'),
        '-CAfile',
        join(dir, 'ca.pem'),
        '-quiet',
        '-ign_eof',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stdin.end('GET /via-openssl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await new Promise<void>((resolve) => child.on('close', () => resolve()));
    expect(output).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(output).toContain('spiffe://a.test/openssl');
  });

  it('curl through the outbound listener', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port });
    const { stdout } = await run('curl', [
      '-sS',
      '-i',
      '-H',
      'X-Sigil-Peer-Id: forged',
      `http://127.0.0.1:${pair.outbound.address.port}/via-curl`,
    ]);
    expect(stdout).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(stdout).toContain(`"x-sigil-peer-id","${CLIENT_ID}"`);
    expect(stdout).not.toContain('forged');
  });
});
