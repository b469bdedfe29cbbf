import { get, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startDemoApp } from './demo-app.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
});

function getJson(port: number, path: string, headers: Record<string, string> = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
}

describe('demo app', () => {
  it('answers with its name, the request, and the caller ID its sidecar set (null without one)', async () => {
    const app = await startDemoApp({ name: 'backend', host: '127.0.0.1', port: 0 });
    server = app.server;
    expect(await getJson(app.port, '/hello?x=1')).toEqual({
      service: 'backend',
      method: 'GET',
      path: '/hello?x=1',
      peer_id: null,
    });
    expect(
      await getJson(app.port, '/', { 'x-sigil-peer-id': 'spiffe://sigil.local/frontend' }),
    ).toMatchObject({
      peer_id: 'spiffe://sigil.local/frontend',
    });
  });
});
