// `sigil-agent api` against a real Workload API server on a temp socket (fake feed, real unix attestor).
import { chownSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnixAttestor } from '../../attestors/workload/unix/index.js';
import {
  FakeIdentityFeed,
  makeTestTrustDomain,
  type TestTrustDomain,
} from '../workloadapi/fixtures.test-support.js';
import { startWorkloadApiServer, type WorkloadApiServer } from '../workloadapi/server.js';
import { apiCommand } from './api.js';

let dir: string;
let socketPath: string;
let server: WorkloadApiServer;
let td: TestTrustDomain;
let feed: FakeIdentityFeed;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-api-'));
  socketPath = path.join(dir, 'api.sock');
  td = await makeTestTrustDomain('example.org', Date.now());
  feed = new FakeIdentityFeed(new Map([['example.org', td.bundle]]));
  feed.set('unix:uid:0', { svids: [td.mintX509('/cli')], bundle: td.bundle, federatedBundles: new Map() });
  const unix = createUnixAttestor({});
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  server = await startWorkloadApiServer({ socketPath, feed, attestor: unix, logger: silent });
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(
  args: string[],
  options: { env?: Record<string, string>; signal?: AbortSignal; onOut?: (t: string) => void } = {},
) {
  let stdout = '';
  let stderr = '';
  const code = await apiCommand(args, {
    stdout: {
      write: (t: string) => {
        stdout += t;
        options.onOut?.(t);
      },
    },
    stderr: { write: (t: string) => (stderr += t) },
    env: options.env ?? {},
    signal: options.signal,
  });
  return { code, stdout, stderr };
}

describe('sigil-agent api', () => {
  it('fetch x509 prints the SVID and writes svid.0.pem, svid.0.key (0600) and bundle.0.pem', async () => {
    const out = path.join(dir, 'out');
    const result = await run(['fetch', 'x509', '--socket-path', socketPath, '--write', out]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^Received 1 svid after \d+ms/);
    expect(result.stdout).toContain('SPIFFE ID:         spiffe://example.org/cli');
    expect(readFileSync(path.join(out, 'svid.0.pem'), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(readFileSync(path.join(out, 'svid.0.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(statSync(path.join(out, 'svid.0.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(out, 'bundle.0.pem'), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(result.stdout).not.toContain('PRIVATE KEY');
  });

  it('fetch x509 --output json, with the socket taken from SPIFFE_ENDPOINT_SOCKET', async () => {
    const result = await run(['fetch', 'x509', '--output', 'json'], {
      env: { SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}` },
    });
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as {
      svids: Array<{ spiffe_id: string }>;
      bundles: Record<string, unknown>;
    };
    expect(doc.svids[0]!.spiffe_id).toBe('spiffe://example.org/cli');
    expect(Object.keys(doc.bundles)).toEqual(['spiffe://example.org']);
  });

  it('fetch jwt and validate jwt', async () => {
    const token = td.mintJwt('/cli', ['db'], Date.now());
    feed.setJwt('unix:uid:0', [{ spiffeId: 'spiffe://example.org/cli', token, hint: '' }]);
    const fetched = await run(['fetch', 'jwt', '--audience', 'db', '--socket-path', socketPath]);
    expect(fetched).toMatchObject({ code: 0, stdout: `token(spiffe://example.org/cli):\n\t${token}\n` });
    const valid = await run([
      'validate',
      'jwt',
      '--audience',
      'db',
      '--svid',
      token,
      '--socket-path',
      socketPath,
    ]);
    expect(valid.code).toBe(0);
    expect(valid.stdout).toContain('SVID is valid.\nSPIFFE ID : spiffe://example.org/cli');
    const invalid = await run([
      'validate',
      'jwt',
      '--audience',
      'other',
      '--svid',
      token,
      '--socket-path',
      socketPath,
    ]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('INVALID_ARGUMENT');
  });

  it('watch prints one line per rotation until its signal aborts', async () => {
    const controller = new AbortController();
    const lines: string[] = [];
    const done = run(['watch', '--socket-path', socketPath], {
      signal: controller.signal,
      onOut: (t) => {
        lines.push(t);
        if (lines.length === 1)
          feed.set('unix:uid:0', {
            svids: [td.mintX509('/cli')],
            bundle: td.bundle,
            federatedBundles: new Map(),
          });
        if (lines.length === 2) controller.abort();
      },
    });
    expect((await done).code).toBe(0);
    expect(lines).toHaveLength(2);
    for (const line of lines)
      expect(line).toMatch(/ update: spiffe:\/\/example\.org\/cli serial=[0-9a-f]+ expires=\S+\n$/);
    expect(lines[0]).not.toBe(lines[1]);
  });

  it('exits 1 when refused, 2 on usage errors, 3 when unreachable', async () => {
    feed.set('unix:uid:0', { svids: [], bundle: td.bundle, federatedBundles: new Map() });
    try {
      const refused = await run(['fetch', 'x509', '--socket-path', socketPath]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('no identity issued');
    } finally {
      feed.set('unix:uid:0', {
        svids: [td.mintX509('/cli')],
        bundle: td.bundle,
        federatedBundles: new Map(),
      });
    }
    expect((await run(['fetch', 'jwt', '--socket-path', socketPath])).code).toBe(2);
    expect((await run(['fetch', 'x509', '--bogus'])).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['fetch', 'x509', '--socket-path', 'tcp://localhost:1'])).code).toBe(2);
    const help = await run(['--help']);
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toContain('Usage: sigil-agent api');
    const unreachable = await run(['fetch', 'x509', '--socket-path', path.join(dir, 'none.sock')]);
    expect(unreachable.code).toBe(3);
  });

  it('exits 5 without connecting when the socket belongs to another user', async () => {
    const plantedDir = mkdtempSync(path.join(tmpdir(), 'sigil-api-planted-'));
    const planted = path.join(plantedDir, 'api.sock');
    let connections = 0;
    const impostor = createServer(() => connections++);
    await new Promise<void>((resolve) => impostor.listen(planted, resolve));
    try {
      chownSync(planted, 65534, 65534);
      const result = await run(['fetch', 'x509', '--socket-path', planted]);
      expect(result.code).toBe(5);
      expect(result.stderr).toContain(
        `--socket-path: socket "${planted}" belongs to someone else (owner uid 65534`,
      );
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((resolve) => impostor.close(() => resolve()));
      rmSync(plantedDir, { recursive: true, force: true });
    }
  });
});
