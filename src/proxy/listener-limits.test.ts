// Every listener's timeouts and connection cap, over real sockets: slowloris heads and bodies on
// mTLS (sockets handed to node:http by emit('connection')), idle keep-alive, the TLS handshake, the
// HTTP/2 relay's idle sessions and streams, opaque pipes, and the plaintext outbound and admin ports.
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import { connect as netConnect, type Server } from 'node:net';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../spiffe/clock.js';
import { startProxyAdmin } from './admin.js';
import { createListenerGuard } from './guard.js';
import { DEFAULT_LIMITS, type ListenerLimits } from './limits.js';
import { createProxyMetrics } from './metrics.js';
import {
  cleanups,
  listen,
  metricValue,
  mtlsConnect,
  RecordingAuthorizer,
  startEchoApp,
  startHttpApp,
  startPair,
  untilClosed,
  useProxyTestHarness,
} from './pair.test-support.js';
import { RecordingLogger } from './testing.test-support.js';

useProxyTestHarness();

const SHORT: ListenerLimits = {
  ...DEFAULT_LIMITS,
  handshakeTimeoutMs: 1_000,
  headerTimeoutMs: 1_000,
  requestTimeoutMs: 2_000,
  idleTimeoutMs: 1_000,
  streamIdleTimeoutMs: 1_000,
  tcpIdleTimeoutMs: 1_000,
};
/** node:http sweeps every half header timeout: a slow head lives at most 1.5x; plus slack for load. */
const SLACK_MS = 3_000;

/** Writes `text` one byte every `everyMs` until the socket closes. */
function trickle(
  socket: { write(b: string): unknown; once(e: 'close', f: () => void): unknown },
  text: string,
  everyMs = 200,
) {
  let at = 0;
  const timer = setInterval(() => {
    if (at < text.length) socket.write(text[at++]!);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

describe('inbound HTTP/1.1 over mTLS', () => {
  async function inbound() {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port, limits: SHORT });
    return { app, pair, port: pair.inbound.address.port, registry: pair.server.registry };
  }

  it('answers 408 and closes a caller that handshakes and then sends nothing', async () => {
    const { port, registry, pair } = await inbound();
    const socket = mtlsConnect(port);
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const { received, elapsedMs } = await untilClosed(socket);
    expect(received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\nx-sigil-error: header-timeout\r\n/);
    expect(elapsedMs).toBeGreaterThan(SHORT.headerTimeoutMs - 100);
    expect(elapsedMs).toBeLessThan(SHORT.headerTimeoutMs * 1.5 + SLACK_MS);
    expect(await metricValue(registry, 'sigil_proxy_timeouts_total', { timeout: 'header' })).toBe(1);
    expect(pair.server.logger.find('Closed on timeout')[0]!.fields).toMatchObject({
      listener: 'in',
      timeout: 'header',
    });
  });

  it('closes a slowloris head (one header byte every 200ms) after the header timeout', async () => {
    const { port, app } = await inbound();
    const socket = mtlsConnect(port);
    socket.once('secureConnect', () =>
      trickle(socket, `GET / HTTP/1.1\r\nHost: app\r\nX-Slow: ${'a'.repeat(100)}`),
    );
    const { received, elapsedMs } = await untilClosed(socket);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(elapsedMs).toBeLessThan(SHORT.headerTimeoutMs * 1.5 + SLACK_MS);
    expect(app.state.requests).toEqual([]);
  });

  it('closes a slow body after the request timeout', async () => {
    const { port, registry } = await inbound();
    const socket = mtlsConnect(port);
    socket.once('secureConnect', () => {
      socket.write('POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\n');
      trickle(socket, 'x'.repeat(1_000));
    });
    const { received, elapsedMs } = await untilClosed(socket);
    expect(received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\nx-sigil-error: request-timeout\r\n/);
    expect(elapsedMs).toBeGreaterThan(SHORT.requestTimeoutMs - 100);
    expect(elapsedMs).toBeLessThan(SHORT.requestTimeoutMs + SHORT.headerTimeoutMs / 2 + SLACK_MS);
    expect(await metricValue(registry, 'sigil_proxy_timeouts_total', { timeout: 'request' })).toBe(1);
  });

  it('closes an idle keep-alive connection after the idle timeout', async () => {
    const { port } = await inbound();
    const socket = mtlsConnect(port);
    socket.once('secureConnect', () => socket.write('GET /once HTTP/1.1\r\nHost: app\r\n\r\n'));
    const { received, elapsedMs } = await untilClosed(socket);
    expect(received).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(elapsedMs).toBeGreaterThan(SHORT.idleTimeoutMs - 100);
    expect(elapsedMs).toBeLessThan(SHORT.idleTimeoutMs + SLACK_MS);
  });

  it('answers a 100 KB header with 431 over mTLS instead of a silent close', async () => {
    const { port, app, registry } = await inbound();
    const socket = mtlsConnect(port);
    socket.once('secureConnect', () =>
      socket.write(`GET / HTTP/1.1\r\nHost: app\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`),
    );
    const { received } = await untilClosed(socket);
    expect(received).toMatch(
      /^HTTP\/1\.1 431 Request Header Fields Too Large\r\nx-sigil-error: header-too-large\r\n/,
    );
    expect(app.state.requests).toEqual([]);
    expect(await metricValue(registry, 'sigil_proxy_refusals_total', { reason: 'header-too-large' })).toBe(1);
  });

  it.each([
    ['two Content-Length fields', 'Content-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['two equal Content-Length fields', 'Content-Length: 1\r\nContent-Length: 1\r\n\r\na'],
    [
      'Content-Length with Transfer-Encoding',
      'Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['Transfer-Encoding twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['chunked not last', 'Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'],
  ])('refuses %s with 400 (node:http parser), before the app', async (_what, rest) => {
    const { port, app } = await inbound();
    const socket = mtlsConnect(port);
    socket.once('secureConnect', () => socket.write(`POST / HTTP/1.1\r\nHost: app\r\n${rest}`));
    const { received } = await untilClosed(socket);
    expect(received).toMatch(/^HTTP\/1\.1 400 Bad Request\r\nx-sigil-error: bad-request\r\n/);
    expect(app.state.requests).toEqual([]);
  });

  it('drops a connection that never finishes its TLS handshake', async () => {
    const { port, registry } = await inbound();
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    const { elapsedMs } = await untilClosed(socket);
    expect(elapsedMs).toBeLessThan(SHORT.handshakeTimeoutMs + SLACK_MS);
    expect(
      await metricValue(registry, 'sigil_proxy_tls_handshake_failures_total', { reason: 'timeout' }),
    ).toBe(1);
  });
});

describe('connection caps', () => {
  it('closes the connection past max_connections at once, counts it and logs it once per interval', async () => {
    const appPort = await startEchoApp();
    const pair = await startPair({
      protocol: 'tcp',
      appPort,
      limits: { ...DEFAULT_LIMITS, maxConnections: 2 },
    });
    const port = pair.inbound.address.port;
    const held = [mtlsConnect(port), mtlsConnect(port)];
    await Promise.all(held.map((s) => new Promise((resolve) => s.once('secureConnect', resolve))));
    const extra = [mtlsConnect(port), mtlsConnect(port)];
    const results = await Promise.all(extra.map((s) => untilClosed(s)));
    expect(results.every((r) => r.received === '' && r.elapsedMs < SLACK_MS)).toBe(true);
    const registry = pair.server.registry;
    expect(await metricValue(registry, 'sigil_proxy_refusals_total', { reason: 'max-connections' })).toBe(2);
    expect(
      pair.server.logger.find('Refused').filter((e) => e.fields.reason === 'max-connections'),
    ).toHaveLength(1);
    // The ones already in keep working, and a slot frees when one leaves.
    held[0]!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const again = mtlsConnect(port);
    await new Promise((resolve) => again.once('secureConnect', resolve));
    expect(again.destroyed).toBe(false);
  });
});

describe('opaque pipes and upgraded connections', () => {
  it('close a TCP pipe after tcp_idle_timeout without a byte', async () => {
    const appPort = await startEchoApp();
    const pair = await startPair({ protocol: 'tcp', appPort, limits: SHORT });
    const socket = netConnect({ host: '127.0.0.1', port: pair.outbound.address.port });
    const echoed = new Promise((resolve) => socket.once('data', resolve));
    socket.write('ping');
    await echoed;
    const { elapsedMs } = await untilClosed(socket);
    expect(elapsedMs).toBeGreaterThan(SHORT.tcpIdleTimeoutMs - 100);
    expect(elapsedMs).toBeLessThan(SHORT.tcpIdleTimeoutMs + SLACK_MS);
  });

  it('close an upgraded WebSocket connection after tcp_idle_timeout without a byte', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port, limits: SHORT });
    const socket = mtlsConnect(pair.inbound.address.port);
    socket.once('secureConnect', () =>
      socket.write('GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'),
    );
    const { received, elapsedMs } = await untilClosed(socket);
    expect(received).toMatch(/^HTTP\/1\.1 101/);
    expect(elapsedMs).toBeLessThan(SHORT.tcpIdleTimeoutMs + SLACK_MS);
    expect(
      await metricValue(pair.server.registry, 'sigil_proxy_timeouts_total', { timeout: 'tcp-idle' }),
    ).toBe(1);
  });
});

describe('the HTTP/2 relay', () => {
  async function relayPair(limits: ListenerLimits) {
    const h2 = createH2Server();
    // The app never answers a POST: its stream stays open and silent.
    h2.on('stream', (stream, headers) => {
      if (headers[':method'] === 'POST') return;
      stream.respond({ ':status': 200 });
      stream.end();
    });
    const sessions = new Set<{ destroy(): void }>();
    h2.on('session', (s) => sessions.add(s));
    const appPort = await listen(h2 as unknown as Server);
    cleanups.push(() => {
      for (const s of sessions) s.destroy();
    });
    // The outbound pipe must not be what closes first: only the relay's own timeouts are tested.
    const pairLimits = { ...limits, tcpIdleTimeoutMs: 60_000 };
    const authorizer = new RecordingAuthorizer(() => false, true);
    return startPair({ protocol: 'http2', appPort, authorizer, limits: pairLimits });
  }

  it('closes a session that sent the preface and then nothing', async () => {
    const pair = await relayPair(SHORT);
    const socket = mtlsConnect(pair.inbound.address.port);
    socket.once('secureConnect', () => socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    const { elapsedMs } = await untilClosed(socket);
    expect(elapsedMs).toBeGreaterThan(SHORT.idleTimeoutMs - 100);
    expect(elapsedMs).toBeLessThan(SHORT.idleTimeoutMs * 2 + SLACK_MS);
    expect(await metricValue(pair.server.registry, 'sigil_proxy_timeouts_total', { timeout: 'idle' })).toBe(
      1,
    );
  });

  it('resets a silent stream after stream_idle_timeout, and announces max_concurrent_streams', async () => {
    const pair = await relayPair({ ...SHORT, idleTimeoutMs: 60_000, maxConcurrentStreams: 7 });
    const session = h2connect(`http://127.0.0.1:${pair.outbound.address.port}`);
    cleanups.push(() => void session.destroy());
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    expect(session.remoteSettings.maxConcurrentStreams).toBe(7);
    const stream = session.request({ ':path': '/upload', ':method': 'POST' });
    stream.on('error', () => {});
    const startedMs = performance.now();
    await new Promise((resolve) => stream.once('close', resolve));
    expect(stream.rstCode).toBe(8); // NGHTTP2_CANCEL
    expect(performance.now() - startedMs).toBeLessThan(SHORT.streamIdleTimeoutMs + SLACK_MS);
    expect(
      await metricValue(pair.server.registry, 'sigil_proxy_timeouts_total', { timeout: 'stream-idle' }),
    ).toBe(1);
  });
});

describe('plaintext listeners', () => {
  it('the outbound listener answers 408 to an app that opens a connection and sends nothing', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port, limits: SHORT });
    const socket = netConnect({ host: '127.0.0.1', port: pair.outbound.address.port });
    const { received, elapsedMs } = await untilClosed(socket);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(elapsedMs).toBeLessThan(SHORT.headerTimeoutMs * 1.5 + SLACK_MS);
  });

  it('the admin port closes a slowloris head and caps its connections', async () => {
    const registry = new Registry();
    const logger = new RecordingLogger();
    const limits = { ...SHORT, maxConnections: 1 };
    const guard = createListenerGuard({
      listener: 'admin',
      limits,
      metrics: createProxyMetrics(registry),
      logger,
      clock: systemClock,
    });
    const admin = await startProxyAdmin({
      listen: { host: '127.0.0.1', port: 0 },
      registry,
      guard,
      isReady: () => true,
      waitingFor: () => 'nothing',
      configDump: () => ({}),
    });
    cleanups.push(() => admin.close());
    const slow = netConnect({ host: '127.0.0.1', port: admin.address.port });
    slow.on('connect', () =>
      trickle(slow, 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa'),
    );
    const closed = untilClosed(slow);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = netConnect({ host: '127.0.0.1', port: admin.address.port });
    second.on('error', () => {});
    expect((await untilClosed(second)).received).toBe('');
    const { received, elapsedMs } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(elapsedMs).toBeLessThan(SHORT.headerTimeoutMs * 1.5 + SLACK_MS);
    expect(
      await metricValue(registry, 'sigil_proxy_refusals_total', {
        listener: 'admin',
        reason: 'max-connections',
      }),
    ).toBe(1);
  });
});
