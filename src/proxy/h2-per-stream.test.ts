// HTTP/2 relayed per stream, as the inbound listener does when the policy needs a method or path:
// each stream authorized, identity headers set, trailers carried, and an app outage answered per
// stream while the caller's session stays usable.
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import type { Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_ID,
  cleanups,
  leafHash,
  listen,
  metricValue,
  RecordingAuthorizer,
  SERVER_ID,
  startPair,
  useProxyTestHarness,
} from './pair.test-support.js';

useProxyTestHarness();

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
