// Opaque tcp and http2 listeners: an inbound/outbound pair piping bytes over real mTLS, what the
// authorizer and the upstream's SPIFFE ID decide per connection, and what a policy change does to
// pipes already open.
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import { createServer as createNetServer, connect as netConnect, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_ID,
  cleanups,
  listen,
  metricValue,
  RecordingAuthorizer,
  SERVER_ID,
  startEchoApp,
  startPair,
  useProxyTestHarness,
} from './pair.test-support.js';

useProxyTestHarness();

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
