// The Kubernetes API client's bounds, against a real HTTPS server with a test certificate: a
// response over the size cap and a server that never answers both fail cleanly (the timeout on a
// ManualClock), a bad token file is refused before any request, and the token never appears in
// an error. A 409 between our PATCH and POST makes the notifier patch the ConfigMap someone made.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedEcCert } from '../../../../test/support/openssl-cert.js';
import { ManualClock } from '../../../spiffe/clock.js';
import { createNotifierMetrics } from '../metrics.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, KubeClient, MAX_RESPONSE_BYTES } from './kube-client.js';
import { createK8sBundleNotifier } from './notifier.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sigil-kube-client-'));
const certFile = path.join(dir, 'ca.crt');
const tokenFile = path.join(dir, 'token');
let server: Server;
let apiServer = '';
let handle: (method: string, url: string, res: import('node:http').ServerResponse) => void = () => {};

beforeAll(async () => {
  const keyFile = path.join(dir, 'key.pem');
  selfSignedEcCert({
    subject: '/CN=api',
    extensions: ['subjectAltName=IP:127.0.0.1'],
    keyFile,
    outFile: certFile,
  });
  writeFileSync(tokenFile, 'very-secret-token');
  server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
    req.resume();
    req.on('end', () => handle(req.method ?? '', req.url ?? '', res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  apiServer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function client(clock = new ManualClock(), token = tokenFile) {
  return new KubeClient({ apiServer, tokenPath: token, caPath: certFile, clock });
}
const send = (c: KubeClient) =>
  c.send(
    'PATCH',
    '/api/v1/namespaces/sigil/configmaps/x',
    {},
    'application/json',
    new AbortController().signal,
  );

describe('KubeClient', () => {
  it('refuses a response over the size cap', async () => {
    handle = (_m, _u, res) => res.end(Buffer.alloc(MAX_RESPONSE_BYTES + 1, 'a'));
    await expect(send(client())).rejects.toThrow(`response larger than ${MAX_RESPONSE_BYTES} bytes`);
  });

  it('gives up on a server that never answers', async () => {
    handle = () => {};
    const clock = new ManualClock();
    const pending = send(client(clock));
    const outcome = pending.catch((err: Error) => err.message);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await clock.advance(DEFAULT_REQUEST_TIMEOUT_MS);
    expect(await outcome).toContain(`no answer within ${DEFAULT_REQUEST_TIMEOUT_MS} ms`);
  });

  it('refuses an empty token file without sending, and never shows the token', async () => {
    const empty = path.join(dir, 'empty-token');
    writeFileSync(empty, '\n');
    let requests = 0;
    handle = (_m, _u, res) => {
      requests += 1;
      res.writeHead(401).end(JSON.stringify({ message: 'Unauthorized' }));
    };
    await expect(send(client(new ManualClock(), empty))).rejects.toThrow('does not hold a bearer token');
    expect(requests).toBe(0);
    const res = await send(client());
    expect(res.status).toBe(401);
    expect(JSON.stringify(res)).not.toContain('very-secret-token');
  });
});

describe('the k8s_bundle notifier', () => {
  it('patches a ConfigMap created by someone else between its PATCH and POST (409)', async () => {
    const seen: string[] = [];
    handle = (method, url, res) => {
      seen.push(`${method} ${url}`);
      if (method === 'POST') return res.writeHead(409).end('{"message":"already exists"}');
      res.writeHead(seen.length === 1 ? 404 : 200).end('{}');
    };
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const registry = new Registry();
    const notifier = createK8sBundleNotifier(
      {
        namespace: 'sigil',
        configMap: 'sigil-bundle',
        configMapKey: 'bundle.crt',
        apiServer,
        tokenPath: tokenFile,
        caPath: certFile,
      },
      {
        bundlePem: () => 'PEM',
        clock: new ManualClock(),
        random: () => 0,
        logger,
        metrics: createNotifierMetrics(registry),
      },
    );
    notifier.bundleChanged();
    for (let i = 0; i < 50 && !lines.some((l) => l.includes('published')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await notifier.close();
    expect(seen).toEqual([
      'PATCH /api/v1/namespaces/sigil/configmaps/sigil-bundle',
      'POST /api/v1/namespaces/sigil/configmaps',
      'PATCH /api/v1/namespaces/sigil/configmaps/sigil-bundle',
    ]);
    expect(await registry.getSingleMetricAsString('sigil_server_bundle_notifier_publishes_total')).toContain(
      'result="success"} 1',
    );
  });
});
