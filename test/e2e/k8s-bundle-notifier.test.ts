// The k8s_bundle notifier against a real HTTPS fake of the Kubernetes API (node:https, a test CA
// made with openssl): the real server process creates the ConfigMap when it is missing, retries a
// failed write, re-reads the rotating token on each call, republishes when `localauthority prepare`
// adds an authority to the bundle, and never logs the token.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/agent-harness.js';
import { makeTempDir, type ServerProcess, startServerProcess } from '../support/harness.js';
import { selfSignedEcCert } from '../support/openssl-cert.js';

interface Recorded {
  method: string;
  path: string;
  contentType: string;
  authorization: string;
  body: { data?: Record<string, string>; metadata?: { name?: string; namespace?: string } };
}

const tmp = makeTempDir('sigil-k8s-bundle-');
const cleanups: Array<() => unknown> = [tmp.cleanup];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fake API server holding ConfigMaps in memory; `failNext` answers the next request 503. */
async function startFakeApi(cert: string, key: string) {
  const requests: Recorded[] = [];
  const configMaps = new Map<string, Record<string, string>>();
  const state = { failNext: 0 };
  const server: Server = createServer({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        contentType: req.headers['content-type'] ?? '',
        authorization: req.headers.authorization ?? '',
        body,
      });
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
      };
      if (state.failNext > 0) {
        state.failNext -= 1;
        return reply(503, { kind: 'Status', message: 'etcd is restarting' });
      }
      const one = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps\/([^/]+)$/.exec(req.url ?? '');
      if (req.method === 'PATCH' && one) {
        const existing = configMaps.get(`${one[1]}/${one[2]}`);
        if (!existing) return reply(404, { kind: 'Status', message: `configmaps "${one[2]}" not found` });
        Object.assign(existing, body.data);
        return reply(200, { data: existing });
      }
      const all = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps$/.exec(req.url ?? '');
      if (req.method === 'POST' && all) {
        configMaps.set(`${all[1]}/${body.metadata.name}`, { ...body.data });
        return reply(201, body);
      }
      reply(405, { kind: 'Status', message: 'unexpected' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return { requests, configMaps, state, port: (server.address() as AddressInfo).port };
}

async function bundlePem(server: ServerProcess): Promise<string> {
  const res = await server.cli('bundle', 'show', '--format', 'pem');
  expect(res.code, res.stderr).toBe(0);
  return res.stdout;
}

describe('notifiers.k8s_bundle', () => {
  it('creates, retries, and republishes the ConfigMap on a bundle change, with the current token', async () => {
    const certFile = path.join(tmp.dir, 'apiserver.crt');
    const keyFile = path.join(tmp.dir, 'apiserver.key');
    selfSignedEcCert({
      subject: '/CN=kube-apiserver',
      extensions: ['subjectAltName=IP:127.0.0.1'],
      keyFile,
      outFile: certFile,
    });
    const api = await startFakeApi(readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'));
    const tokenFile = path.join(tmp.dir, 'token');
    writeFileSync(tokenFile, 'first-secret-token\n');
    api.state.failNext = 1;

    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(
      config,
      [
        'trust_domain: example.org',
        'notifiers:',
        '  k8s_bundle:',
        '    namespace: mesh',
        `    api_server: https://127.0.0.1:${api.port}`,
        `    token_path: ${tokenFile}`,
        `    ca_path: ${certFile}`,
        '',
      ].join('\n'),
    );
    const server = await startServerProcess({ configFile: config });
    // Reverse order: the server stops before its data dir goes.
    cleanups.push(
      () => rmSync(server.dataDir, { recursive: true, force: true }),
      () => server.stop(),
    );

    // First write: 503 (retried after backoff), then PATCH → 404, then POST creates it.
    await waitFor(
      () => api.configMaps.has('mesh/sigil-bundle'),
      15_000,
      () =>
        `no ConfigMap created; requests: ${JSON.stringify(api.requests.map((r) => r.method))}\n${server.logs()}`,
    );
    const first = await bundlePem(server);
    expect(api.configMaps.get('mesh/sigil-bundle')).toEqual({ 'bundle.crt': first });
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'PATCH /api/v1/namespaces/mesh/configmaps/sigil-bundle',
      'PATCH /api/v1/namespaces/mesh/configmaps/sigil-bundle',
      'POST /api/v1/namespaces/mesh/configmaps',
    ]);
    expect(api.requests[0]!.contentType).toBe('application/merge-patch+json');
    expect(api.requests.every((r) => r.authorization === 'Bearer first-secret-token')).toBe(true);
    expect(server.logs()).toContain('Publishing the trust bundle to ConfigMap failed; retrying');

    // The kubelet rotates the token; a new authority enters the bundle: a PATCH with the new token.
    writeFileSync(tokenFile, 'second-secret-token\n');
    const seen = api.requests.length;
    const prepared = await server.cli('localauthority', 'prepare', '--kind', 'x509');
    expect(prepared.code, prepared.stderr).toBe(0);
    const second = await bundlePem(server);
    expect(second).not.toBe(first);
    expect(second.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    await waitFor(
      () => api.configMaps.get('mesh/sigil-bundle')?.['bundle.crt'] === second,
      15_000,
      () => `bundle not republished\n${server.logs()}`,
    );
    const update = api.requests.slice(seen);
    expect(update.map((r) => r.method)).toEqual(['PATCH']);
    expect(update[0]!.authorization).toBe('Bearer second-secret-token');
    expect(update[0]!.body).toEqual({ data: { 'bundle.crt': second } });

    expect(server.logs()).not.toContain('secret-token');
    expect(await server.stop()).toBe(0);
  }, 60_000);
});
