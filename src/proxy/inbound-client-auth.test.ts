// Who the inbound listener lets in: client certificates refused by reason, a valid one accepted,
// and plaintext in permissive mode (HTTP and TCP) versus strict mode.
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { encodePem } from '../spiffe/pem.js';
import { startInbound } from './inbound/index.js';
import {
  cleanups,
  headerPairs,
  makeSide,
  metricValue,
  RecordingAuthorizer,
  rawExchange,
  rogueA,
  SERVER_ID,
  startEchoApp,
  startHttpApp,
  tdA,
  tdB,
  useProxyTestHarness,
} from './pair.test-support.js';
import type { TestSvid } from './testing.test-support.js';

useProxyTestHarness();

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
