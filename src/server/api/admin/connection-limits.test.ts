import net from 'node:net';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startAdminFixture } from '../../../../test/support/admin-app.js';
import { systemClock } from '../../../spiffe/clock.js';
import { refusalLog } from '../refusal-log.js';
import { type AdminRefusal, limitedServerOptions } from './connection-limits.js';
import type { AdminApiLimits } from './limits.js';

const LIMITS: AdminApiLimits = {
  handshakeTimeoutMs: 1_000,
  headerTimeoutMs: 3_000,
  requestTimeoutMs: 4_000,
  idleTimeoutMs: 5_000,
  maxConnections: 10,
};

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** A fastify app on a TCP port with the limits applied, the refusals it logged and counted. */
async function limitedApp() {
  const lines: string[] = [];
  const registry = new Registry();
  const counter = new Counter({ name: 'refusals', help: 'h', labelNames: ['reason'], registers: [registry] });
  const refusals = refusalLog<AdminRefusal>({
    clock: systemClock,
    logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }),
    message: 'Admin API connections refused',
    counter,
  });
  const app = Fastify(limitedServerOptions(LIMITS, refusals, systemClock) as FastifyServerOptions);
  app.addHook('onClose', async () => refusals.close());
  app.get('/ok', async () => ({ ok: true }));
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as net.AddressInfo;
  return { app, port, lines, refusalCount: async () => (await counter.get()).values };
}

/** Sends `raw` and returns everything the server answered before closing. */
function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect(port, '127.0.0.1', () => socket.write(raw));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}

describe('limitedServerOptions', () => {
  it('gives node:http every timeout, where fastify would set 0 or 72 s', async () => {
    const { app } = await limitedApp();
    expect(app.server).toMatchObject({
      headersTimeout: 3_000,
      requestTimeout: 4_000,
      keepAliveTimeout: 5_000,
      timeout: 5_000,
    });
  });

  it('answers a malformed request 400 and a huge head 431, naming why, then closes; both are logged', async () => {
    const { port, lines, refusalCount } = await limitedApp();
    const bad = await exchange(port, 'GET /ok HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bad).toContain('connection: close');
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'ERR_INPUT_INVALID', message: 'malformed HTTP request (HPE_INVALID_HEADER_TOKEN)' },
    });
    const huge = await exchange(port, `GET /ok HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(huge).toContain('request head larger than 16 KiB');
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ reason: 'bad-request', detail: 'HPE_INVALID_HEADER_TOKEN', count: 1 }),
      expect.objectContaining({ reason: 'header-too-large', count: 1 }),
    ]);
    expect((await refusalCount()).map((v) => [v.labels.reason, v.value])).toEqual([
      ['bad-request', 1],
      ['header-too-large', 1],
    ]);
  });

  it('serves a well-formed request as usual', async () => {
    const { port } = await limitedApp();
    const ok = await exchange(port, 'GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(ok).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});

describe('the mTLS admin listener', () => {
  it('logs a failed accept (EMFILE) instead of letting it end the server', async () => {
    // No certificate: nothing here completes a handshake, the server only has to listen.
    const fixture = await startAdminFixture({ app: { auth: 'mtls', https: {} } });
    try {
      await fixture.app.listen({ host: '127.0.0.1', port: 0 });
      const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
      expect(() => fixture.app.server.emit('error', emfile)).not.toThrow();
      expect(fixture.logLines.map((line) => JSON.parse(line))).toContainEqual(
        expect.objectContaining({
          msg: 'Admin API connections refused',
          reason: 'accept-failed',
          detail: 'EMFILE',
        }),
      );
    } finally {
      await fixture.close();
    }
  });
});
