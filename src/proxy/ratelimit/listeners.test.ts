// Rate limits on real inbound listeners (real sockets and mTLS, a ManualClock so no token comes
// back during a test): what a caller over its limit receives on each protocol, that other callers
// and denied requests do not spend its tokens, and what is counted.
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import { connect as netConnect, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { type InboundOptions, startInbound } from '../inbound/index.js';
import {
  cleanups,
  listen,
  makeSide,
  metricValue,
  mtlsConnect,
  RecordingAuthorizer,
  startEchoApp,
  startHttpApp,
  tdA,
  untilClosed,
  useProxyTestHarness,
} from '../pair.test-support.js';
import type { RateLimitConfig } from './limiter.js';

useProxyTestHarness();

const CLIENT = 'spiffe://a.test/client';
const OTHER = 'spiffe://a.test/other';
/** Two requests at once, then one every 2 s: Retry-After reads 2. */
const PER_CALLER_2: RateLimitConfig = {
  total: null,
  perCaller: { requestsPerSecond: 0.5, burst: 2 },
  overrides: [],
};

async function inbound(
  protocol: InboundOptions['protocol'],
  appPort: number,
  rateLimit: RateLimitConfig,
  extra: Partial<InboundOptions> = {},
) {
  const side = makeSide(tdA.mint('/server'));
  const listener = await startInbound({
    name: 'in',
    listen: { host: '127.0.0.1', port: 0 },
    protocol,
    app: { host: '127.0.0.1', port: appPort },
    mode: 'strict',
    identity: side.identity,
    authorizer: new RecordingAuthorizer(),
    metrics: side.metrics,
    logger: side.logger,
    clock: new ManualClock(),
    rateLimit,
    ...extra,
  });
  cleanups.push(() => listener.close());
  return { side, port: listener.address.port };
}

/** Sends `requests` one after another on `socket`, each after the previous response; resolves with the heads. */
function exchange(socket: Duplex, requests: readonly string[]): Promise<string[]> {
  const heads: string[] = [];
  let buffer = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', function onData(chunk: Buffer) {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        heads.push(head);
        buffer = buffer.subarray(end + 4 + length);
        if (heads.length === requests.length) {
          socket.off('data', onData);
          socket.off('error', reject);
          return resolve(heads);
        }
        socket.write(requests[heads.length]!);
      }
    });
    socket.write(requests[0]!);
  });
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: app\r\n\r\n`;
const statusOf = (head: string) => Number(head.split(' ')[1]);

describe('rate limits on inbound listeners', () => {
  it('answers HTTP/1.1 over the caller limit with 429 and Retry-After, before the app', async () => {
    const app = await startHttpApp();
    const { side, port } = await inbound('http', app.port, PER_CALLER_2);
    const heads = await exchange(mtlsConnect(port), [get('/1'), get('/2'), get('/3'), get('/4')]);
    expect(heads.map(statusOf)).toEqual([200, 200, 429, 429]);
    expect(heads[2]).toMatch(/\r\nx-sigil-error: rate-limited\r\n/);
    expect(heads[2]).toMatch(/\r\nretry-after: 2\r\n/);
    expect(app.state.requests.map((r) => r.url)).toEqual(['/1', '/2']);
    // Another caller has its own bucket.
    const other = await exchange(mtlsConnect(port, tdA.mint('/other')), [get('/a'), get('/b')]);
    expect(other.map(statusOf)).toEqual([200, 200]);
    const labels = { listener: 'in', principal: CLIENT, limit: 'per_caller' };
    expect(await metricValue(side.registry, 'sigil_proxy_rate_limited_total', labels)).toBe(2);
    expect(
      await metricValue(side.registry, 'sigil_proxy_requests_total', { source_id: CLIENT, class: '4xx' }),
    ).toBe(2);
    expect(side.logger.find('Rate limited')[0]!.fields).toMatchObject({
      source_id: CLIENT,
      limit: 'per_caller',
    });
  });

  it('spends no token on a request the policy denies', async () => {
    const app = await startHttpApp();
    const { port } = await inbound('http', app.port, PER_CALLER_2, {
      authorizer: new RecordingAuthorizer((r) => r.path === '/denied'),
    });
    const heads = await exchange(mtlsConnect(port), [
      get('/denied'),
      get('/denied'),
      get('/denied'),
      get('/ok'),
      get('/ok'),
      get('/ok'),
    ]);
    expect(heads.map(statusOf)).toEqual([403, 403, 403, 200, 200, 429]);
  });

  it('limits the callers together under the total', async () => {
    const app = await startHttpApp();
    const { side, port } = await inbound('http', app.port, {
      total: { requestsPerSecond: 1, burst: 3 },
      perCaller: null,
      overrides: [],
    });
    expect((await exchange(mtlsConnect(port), [get('/'), get('/')])).map(statusOf)).toEqual([200, 200]);
    const other = await exchange(mtlsConnect(port, tdA.mint('/other')), [get('/'), get('/')]);
    expect(other.map(statusOf)).toEqual([200, 429]);
    expect(other[1]).toMatch(/\r\nretry-after: 1\r\n/);
    const labels = { principal: OTHER, limit: 'total' };
    expect(await metricValue(side.registry, 'sigil_proxy_rate_limited_total', labels)).toBe(1);
  });

  it('refuses a WebSocket upgrade over the limit with 429 and closes the connection', async () => {
    const app = await startHttpApp();
    const { port } = await inbound('http', app.port, {
      ...PER_CALLER_2,
      perCaller: { requestsPerSecond: 0.5, burst: 1 },
    });
    const socket = mtlsConnect(port);
    expect((await exchange(socket, [get('/')])).map(statusOf)).toEqual([200]);
    const closed = untilClosed(socket);
    socket.write('GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    const { received } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(received).toMatch(/\r\nretry-after: 2\r\n/);
    expect(app.state.requests.map((r) => r.url)).toEqual(['/']);
  });

  it('closes opaque tcp connections over the limit once the handshake named the caller', async () => {
    const appPort = await startEchoApp();
    const { side, port } = await inbound('tcp', appPort, PER_CALLER_2);
    const echoes = async (svid = tdA.mint('/client')) => {
      const socket = mtlsConnect(port, svid);
      const closed = untilClosed(socket);
      socket.once('secureConnect', () => socket.end('ping'));
      return (await closed).received;
    };
    expect([await echoes(), await echoes(), await echoes()]).toEqual(['ping', 'ping', '']);
    expect(await echoes(tdA.mint('/other'))).toBe('ping');
    const labels = { principal: CLIENT, limit: 'per_caller' };
    expect(await metricValue(side.registry, 'sigil_proxy_rate_limited_total', labels)).toBe(1);
  });

  it('answers relayed HTTP/2 streams over the limit with :status 429 and retry-after', async () => {
    const h2 = createH2Server();
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const appPort = await listen(h2 as unknown as Server);
    const { port } = await inbound('http2', appPort, PER_CALLER_2, {
      authorizer: new RecordingAuthorizer(() => false, true),
    });
    const session = h2connect(`http://127.0.0.1:${port}`, { createConnection: () => mtlsConnect(port) });
    cleanups.push(() => void session.destroy());
    const request = () =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const stream = session.request({ ':path': '/x' });
        stream.on('response', (headers) => resolve(headers));
        stream.on('error', reject);
        stream.resume();
      });
    const answers = [await request(), await request(), await request()];
    expect(answers.map((h) => h[':status'])).toEqual([200, 200, 429]);
    expect(answers[2]).toMatchObject({ 'retry-after': '2', 'x-sigil-error': 'rate-limited' });
  });

  it('puts every plaintext caller of a permissive listener in one bucket', async () => {
    const app = await startHttpApp();
    const { side, port } = await inbound('http', app.port, PER_CALLER_2, { mode: 'permissive' });
    const plain = () => {
      const socket = netConnect({ host: '127.0.0.1', port });
      cleanups.push(() => void socket.destroy());
      return socket;
    };
    expect((await exchange(plain(), [get('/')])).map(statusOf)).toEqual([200]);
    expect((await exchange(plain(), [get('/'), get('/')])).map(statusOf)).toEqual([200, 429]);
    const labels = { principal: 'plaintext', limit: 'per_caller' };
    expect(await metricValue(side.registry, 'sigil_proxy_rate_limited_total', labels)).toBe(1);
  });
});
