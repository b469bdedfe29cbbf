import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isSigilError } from './errors.js';
import { METRICS_MAX_CONNECTIONS, type MetricsListener, startMetricsListener } from './metrics-listener.js';

const listeners: MetricsListener[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const listener of listeners.splice(0)) await listener.close();
});

async function start(render = async () => ({ contentType: 'text/plain; version=0.0.4', body: 'up 1\n' })) {
  const errors: unknown[] = [];
  const listener = await startMetricsListener({
    listen: { host: '127.0.0.1', port: 0 },
    field: 'metrics_bind',
    render,
    onError: (err) => errors.push(err),
  });
  listeners.push(listener);
  return { port: listener.address.port, errors };
}

function request(port: number, method: string, path: string) {
  return new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('startMetricsListener', () => {
  it('serves GET /metrics with the rendered exposition and its content type', async () => {
    const { port } = await start();
    expect(await request(port, 'GET', '/metrics')).toEqual({
      status: 200,
      type: 'text/plain; version=0.0.4',
      body: 'up 1\n',
    });
    expect((await request(port, 'GET', '/metrics?name[]=up')).status).toBe(200);
  });

  it.each([
    ['GET', '/'],
    ['GET', '/healthz'],
    ['GET', '/metrics/extra'],
    ['POST', '/metrics'],
    ['DELETE', '/metrics'],
  ])('answers %s %s with 404: it serves nothing else', async (method, path) => {
    const { port } = await start();
    const reply = await request(port, method, path);
    expect(reply.status).toBe(404);
    expect(reply.body).not.toContain('up 1');
  });

  it('answers 500 without details when rendering fails, and reports the error', async () => {
    const { port, errors } = await start(async () => {
      throw new Error('collector broke');
    });
    const reply = await request(port, 'GET', '/metrics');
    expect(reply.status).toBe(500);
    expect(reply.body).not.toContain('collector broke');
    expect(errors).toHaveLength(1);
  });

  it('names the config key and the address when the port is taken', async () => {
    const { port } = await start();
    const err = await startMetricsListener({
      listen: { host: '127.0.0.1', port },
      field: 'metrics_bind',
      render: async () => ({ contentType: 'text/plain', body: '' }),
      onError: () => {},
    }).catch((e: unknown) => e);
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toBe(
      `metrics_bind 127.0.0.1:${port} is in use (EADDRINUSE); choose another with metrics_bind in the config`,
    );
  });

  it(`closes connections past ${METRICS_MAX_CONNECTIONS} unread`, async () => {
    const { port } = await start();
    const open = async () => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      return socket;
    };
    for (let i = 0; i < METRICS_MAX_CONNECTIONS; i++) await open();
    // Past the cap node closes the socket at accept: the client sees it end without a byte.
    const extra = await open();
    await new Promise((resolve) => extra.once('close', resolve));
    // The earlier connections are still served.
    const first = sockets[0]!;
    const answer = new Promise<string>((resolve) => first.once('data', (chunk) => resolve(String(chunk))));
    first.write('GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(await answer).toMatch(/^HTTP\/1\.1 200/);
  });
});
