// The path policy decides on is the path the app receives, on every inbound HTTP path (HTTP/1.1,
// WebSocket upgrades, the HTTP/2 relay); what could be read two ways is refused with 400 before
// the app sees anything; a request with two Host fields too.
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import type { Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  cleanups,
  listen,
  metricValue,
  mtlsConnect,
  RecordingAuthorizer,
  rawExchange,
  startHttpApp,
  startPair,
  untilClosed,
  useProxyTestHarness,
} from './pair.test-support.js';
import { DEFAULT_PATH_NORMALIZATION } from './policy/normalize.js';

useProxyTestHarness();

const get = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: app\r\n${extra}\r\n`;

describe('HTTP/1.1: the app receives exactly the path the policy decided on', () => {
  it.each([
    ['//admin/./x/', '/admin/x/'],
    ['/x/../admin', '/admin'],
    ['/x/%2e%2e/admin?q=%2f', '/admin?q=%2f'],
    ['/%61dmin/%7e', '/admin/~'],
    ['/a{b}', '/a%7Bb%7D'],
    ['/ADMIN', '/ADMIN'],
  ])('%s arrives as %s', async (target, expected) => {
    const app = await startHttpApp();
    const authorizer = new RecordingAuthorizer();
    const pair = await startPair({ protocol: 'http', appPort: app.port, authorizer });
    const [response] = await rawExchange(pair.outbound.address.port, [get(target)]);
    expect(response!.head).toMatch(/^HTTP\/1\.1 200/);
    expect(app.state.requests.map((r) => r.url)).toEqual([expected]);
    expect(authorizer.seen.map((r) => r.path)).toEqual([expected.split('?')[0]]);
  });

  it.each([
    ['/admin%2fx', 'escaped-slash'],
    ['/api/..%2fadmin/x', 'escaped-slash'],
    ['/admin%5cx', 'escaped-slash'],
    ['/admin\\x', 'backslash'],
    ['/admin;x=1/y', 'path-parameter'],
    ['/admin%00', 'control-character'],
    ['/admin%252f', 'double-encoding'],
    ['/admin%zz', 'invalid-percent-encoding'],
    ['/admin#x', 'fragment'],
    ['http://app/admin', 'not-origin-form'],
  ])('%s is refused with 400 (%s) and never reaches the app', async (target, reason) => {
    const app = await startHttpApp();
    const authorizer = new RecordingAuthorizer();
    const pair = await startPair({ protocol: 'http', appPort: app.port, authorizer });
    const [response] = await rawExchange(pair.outbound.address.port, [get(target)]);
    expect(response!.head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(response!.head).toContain('\r\nx-sigil-error: bad-path\r\n');
    expect(response!.body).toContain('sigil proxy: request target');
    expect(app.state.requests).toEqual([]);
    expect(authorizer.seen).toEqual([]);
    const [log] = pair.server.logger.find('Refused');
    expect(log!.fields).toMatchObject({
      reason: 'bad-path',
      path_refusal: reason,
      source_id: pair.client.identity.spiffeId,
    });
    expect(
      await metricValue(pair.server.registry, 'sigil_proxy_refusals_total', { reason: 'bad-path' }),
    ).toBe(1);
  });

  it('forwards what the operator opted into, exactly as matched', async () => {
    const app = await startHttpApp();
    const authorizer = new RecordingAuthorizer();
    const pair = await startPair({
      protocol: 'http',
      appPort: app.port,
      authorizer,
      pathNormalization: {
        ...DEFAULT_PATH_NORMALIZATION,
        escapedSlashes: 'unescape',
        pathParameters: 'keep',
      },
    });
    await rawExchange(pair.outbound.address.port, [get('/api/..%2fadmin/x'), get('/a;v=1/b')]);
    expect(app.state.requests.map((r) => r.url)).toEqual(['/admin/x', '/a;v=1/b']);
    expect(authorizer.seen.map((r) => r.path)).toEqual(['/admin/x', '/a;v=1/b']);
  });

  it('refuses two Host fields with 400 on the inbound and the outbound side; the app sees neither', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port });
    const [outbound] = await rawExchange(pair.outbound.address.port, [get('/x', 'Host: other\r\n')]);
    expect(outbound!.head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(outbound!.head).toContain('x-sigil-error: duplicate-host');
    // Straight to the inbound listener, as a caller's own client would.
    const socket = mtlsConnect(pair.inbound.address.port);
    socket.once('secureConnect', () => socket.write(get('/x', 'host: other\r\nConnection: close\r\n')));
    const { received } = await untilClosed(socket);
    expect(received).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(received).toContain('request has 2 Host header fields; one is allowed');
    expect(app.state.requests).toEqual([]);
  });
});

describe('WebSocket upgrades', () => {
  const upgrade = (target: string) =>
    `GET ${target} HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

  it('forward the normalized path, and refuse an ambiguous one with 400', async () => {
    const app = await startHttpApp();
    const authorizer = new RecordingAuthorizer();
    const pair = await startPair({ protocol: 'http', appPort: app.port, authorizer });
    const socket = mtlsConnect(pair.inbound.address.port);
    socket.once('secureConnect', () => socket.write(upgrade('/ws/../live/%61')));
    const switched = await new Promise<string>((resolve) =>
      socket.once('data', (c: Buffer) => resolve(c.toString())),
    );
    expect(switched).toMatch(/^HTTP\/1\.1 101/);
    expect(app.state.requests.map((r) => r.url)).toEqual(['/live/a']);
    expect(authorizer.seen.map((r) => r.path)).toEqual(['/live/a']);

    const refused = mtlsConnect(pair.inbound.address.port);
    refused.once('secureConnect', () => refused.write(upgrade('/live%2f..%2fadmin')));
    const { received } = await untilClosed(refused);
    expect(received).toMatch(/^HTTP\/1\.1 400 Bad Request\r\nx-sigil-error: bad-path\r\n/);
    expect(app.state.requests).toHaveLength(1);
  });
});

describe('HTTP/2 relayed per stream', () => {
  it('authorizes and forwards the normalized :path; refuses an ambiguous one with 400', async () => {
    const seen: string[] = [];
    const h2 = createH2Server();
    h2.on('stream', (stream, headers) => {
      seen.push(String(headers[':path']));
      stream.respond({ ':status': 200 });
      stream.end();
    });
    const sessions = new Set<{ destroy(): void }>();
    h2.on('session', (s) => sessions.add(s));
    const appPort = await listen(h2 as unknown as Server);
    cleanups.push(() => {
      for (const s of sessions) s.destroy();
    });
    const authorizer = new RecordingAuthorizer(() => false, true);
    const pair = await startPair({ protocol: 'http2', appPort, authorizer });
    const session = h2connect(`http://127.0.0.1:${pair.outbound.address.port}`);
    cleanups.push(() => void session.destroy());
    const call = (path: string) =>
      new Promise<{ status: number; error: unknown }>((resolve, reject) => {
        const req = session.request({ ':path': path });
        let status = 0;
        let error: unknown;
        req.on('response', (h) => {
          status = Number(h[':status']);
          error = h['x-sigil-error'];
        });
        req.on('data', () => {});
        req.on('end', () => resolve({ status, error }));
        req.on('error', reject);
        req.end();
      });
    expect(await call('/grpc/../pkg.Svc/%4Dethod?x')).toMatchObject({ status: 200 });
    expect(await call('/pkg.Svc%2fAdmin')).toEqual({ status: 400, error: 'bad-path' });
    expect(await call('/pkg.Svc\\Admin')).toEqual({ status: 400, error: 'bad-path' });
    expect(seen).toEqual(['/pkg.Svc/Method?x']);
    expect(authorizer.seen.map((r) => r.path)).toEqual(['/pkg.Svc/Method']);
  });
});
