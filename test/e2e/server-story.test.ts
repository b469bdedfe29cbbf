// The operator's story from the README, with real processes: start the server, register workloads,
// mint an SVID and verify it with openssl, restart (gracefully and with kill -9) and find everything,
// the same CA included, still there.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSpiffeBundle } from '../../src/spiffe/bundle.js';
import { parseTrustDomain } from '../../src/spiffe/id.js';
import { validateJwtSvid } from '../../src/spiffe/jwt-svid.js';
import { makeTempDir, runCommand, type ServerProcess, startServerProcess } from '../support/harness.js';

const TD = 'example.org';
const running: ServerProcess[] = [];
const temps: Array<() => void> = [];

async function start(dataDir?: string): Promise<ServerProcess> {
  const server = await startServerProcess({ trustDomain: TD, dataDir });
  running.push(server);
  return server;
}

afterEach(async () => {
  for (const server of running.splice(0)) await server.stop();
  for (const cleanup of temps.splice(0)) cleanup();
});

function json<T>(result: { code: number; stdout: string; stderr: string }): T {
  expect(result.stderr, result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe('sigil-server, end to end', () => {
  it('registers workloads, mints SVIDs that openssl verifies, and keeps everything across restarts', async () => {
    const tmp = makeTempDir();
    temps.push(tmp.cleanup);
    const dataDir = path.join(tmp.dir, 'data');
    let server = await start(dataDir);

    const created = json<{ entry: { id: string; spiffe_id: string } }>(
      await server.cli(
        'entry',
        'create',
        '--output',
        'json',
        '--spiffe-id',
        `spiffe://${TD}/web`,
        '--parent-id',
        `spiffe://${TD}/node1`,
        '--selector',
        'unix:uid:1000',
        '--selector',
        'unix:gid:1000',
        '--dns',
        'web.example.org',
      ),
    );
    expect(created.entry.spiffe_id).toBe(`spiffe://${TD}/web`);
    const node = json<{ entry: { parent_id: string } }>(
      await server.cli(
        'entry',
        'create',
        '--output',
        'json',
        '--node',
        '--spiffe-id',
        `spiffe://${TD}/nodes/all`,
        '--selector',
        'join_token:any',
      ),
    );
    expect(node.entry.parent_id).toBe(`spiffe://${TD}/sigil/server`);

    const duplicate = await server.cli(
      'entry',
      'create',
      '--output',
      'json',
      '--spiffe-id',
      `spiffe://${TD}/web`,
      '--parent-id',
      `spiffe://${TD}/node1`,
      '--selector',
      'unix:gid:1000',
      '--selector',
      'unix:uid:1000',
    );
    expect(duplicate.code).toBe(1);
    expect(JSON.parse(duplicate.stdout).error.code).toBe('ERR_ENTRY_DUPLICATE');

    const token = json<{ token: string; spiffe_id: string }>(
      await server.cli(
        'token',
        'generate',
        '--output',
        'json',
        '--spiffe-id',
        `spiffe://${TD}/node1`,
        '--ttl',
        '10m',
      ),
    );
    expect(token.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.logs()).not.toContain(token.token);

    // Mint with the key written by the CLI, then let openssl judge the result against the bundle.
    const svidDir = path.join(tmp.dir, 'svid');
    const mint = await server.cli(
      'x509',
      'mint',
      '--spiffe-id',
      `spiffe://${TD}/web`,
      '--ttl',
      '10m',
      '--write',
      svidDir,
    );
    expect(mint.code, mint.stderr).toBe(0);
    expect(statSync(path.join(svidDir, 'svid.key')).mode & 0o777).toBe(0o600);
    const verify = await runCommand('openssl', [
      'verify',
      '-partial_chain',
      '-CAfile',
      path.join(svidDir, 'bundle.pem'),
      path.join(svidDir, 'svid.pem'),
    ]);
    expect(verify.stdout).toContain(': OK');
    const text = await runCommand('openssl', [
      'x509',
      '-in',
      path.join(svidDir, 'svid.pem'),
      '-noout',
      '-text',
    ]);
    expect(text.stdout).toContain(`URI:spiffe://${TD}/web`);
    expect(text.stdout).toMatch(/CA:FALSE/);
    expect(text.stdout).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    const keyText = readFileSync(path.join(svidDir, 'svid.key'), 'utf8');
    expect(server.logs()).not.toContain(keyText.split('\n')[1]);

    // A JWT-SVID validates against the published bundle.
    const jwt = json<{ token: string }>(
      await server.cli(
        'jwt',
        'mint',
        '--output',
        'json',
        '--spiffe-id',
        `spiffe://${TD}/web`,
        '--audience',
        'billing',
      ),
    );
    const bundleJson = (await server.cli('bundle', 'show', '--format', 'spiffe')).stdout;
    const bundle = parseSpiffeBundle(bundleJson, parseTrustDomain(TD));
    const validated = validateJwtSvid(jwt.token, {
      audience: 'billing',
      bundleFor: () => bundle,
      nowMs: Date.now(),
    });
    expect(validated.spiffeId.toString()).toBe(`spiffe://${TD}/web`);
    expect(server.logs()).not.toContain(jwt.token);

    const bundlePemBefore = (await server.cli('bundle', 'show', '--format', 'pem')).stdout;
    expect(bundlePemBefore).toContain('BEGIN CERTIFICATE');

    // Graceful restart: same entries, same CA.
    expect(await server.stop()).toBe(0);
    server = await start(dataDir);
    const listed = json<{ entries: Array<{ id: string }> }>(
      await server.cli('entry', 'show', '--output', 'json'),
    );
    expect(listed.entries.map((e) => e.id)).toContain(created.entry.id);
    expect(listed.entries).toHaveLength(2);
    expect((await server.cli('bundle', 'show', '--format', 'pem')).stdout).toBe(bundlePemBefore);
    const reverify = await runCommand('openssl', [
      'verify',
      '-partial_chain',
      '-CAfile',
      path.join(svidDir, 'bundle.pem'),
      path.join(svidDir, 'svid.pem'),
    ]);
    expect(reverify.stdout).toContain(': OK');

    // kill -9 right after an acknowledged write: the write survives.
    const late = json<{ entry: { id: string } }>(
      await server.cli(
        'entry',
        'create',
        '--output',
        'json',
        '--spiffe-id',
        `spiffe://${TD}/db`,
        '--parent-id',
        `spiffe://${TD}/node1`,
        '--selector',
        'unix:uid:2000',
      ),
    );
    await server.kill9();
    running.splice(running.indexOf(server), 1);
    server = await start(dataDir);
    const shown = json<{ entry: { spiffe_id: string } }>(
      await server.cli('entry', 'show', '--output', 'json', '--id', late.entry.id),
    );
    expect(shown.entry.spiffe_id).toBe(`spiffe://${TD}/db`);
    expect((await server.cli('bundle', 'show', '--format', 'pem')).stdout).toBe(bundlePemBefore);

    // Secrets on disk are owner-only.
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dataDir, 'keys')).mode & 0o777).toBe(0o700);
    expect(statSync(server.adminSocket).mode & 0o777).toBe(0o600);
    const keyFiles = (
      await runCommand('find', [path.join(dataDir, 'keys'), '-type', 'f', '-name', '*.key'])
    ).stdout
      .trim()
      .split('\n');
    expect(keyFiles.length).toBeGreaterThanOrEqual(2);
    for (const file of keyFiles) expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses a second server on the same admin socket and says what to do', async () => {
    const first = await start();
    const other = makeTempDir();
    temps.push(other.cleanup);
    // Its own data dir, so that the admin socket (not the data dir's claim) is what is refused.
    const second = await startServerProcess({
      trustDomain: TD,
      dataDir: other.dir,
      extraArgs: ['--admin-socket', first.adminSocket],
    }).catch((err: Error) => err);
    expect(second).toBeInstanceOf(Error);
    expect(String(second)).toMatch(
      /admin_socket: .* is served by a running process; stop it or choose another path/,
    );
    expect((await first.cli('healthcheck')).code).toBe(0);
  });

  it('refuses a file at the admin socket path that is not a socket, and leaves it in place', async () => {
    const tmp = makeTempDir();
    temps.push(tmp.cleanup);
    const adminSocket = path.join(tmp.dir, 'admin.sock');
    writeFileSync(adminSocket, 'not a socket\n');
    const refused = await start(tmp.dir).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(Error);
    expect(String(refused)).toContain(
      `admin_socket: ${JSON.stringify(adminSocket)} exists and is not a socket; refusing to replace it`,
    );
    expect(readFileSync(adminSocket, 'utf8')).toBe('not a socket\n');
  });

  it('exits 2 with every config problem listed', async () => {
    const tmp = makeTempDir();
    temps.push(tmp.cleanup);
    const file = path.join(tmp.dir, 'server.yaml');
    await import('node:fs').then((fs) =>
      fs.writeFileSync(
        file,
        'trust_domain: Example.org\nca:\n  key_type: ec256\ndefault_x509_svid_ttl: 90x\ncolour: blue\n',
      ),
    );
    const result = await runCommand(process.execPath, [
      path.join(import.meta.dirname, '../../bin/sigil-server'),
      'run',
      '--config',
      file,
      '--data-dir',
      path.join(tmp.dir, 'd'),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('has 4 problems');
    expect(result.stderr).toContain('trust_domain:');
    expect(result.stderr).toContain('ca.key_type: must be one of ec-p256, ec-p384, rsa-2048 (got "ec256")');
    expect(result.stderr).toContain('default_x509_svid_ttl: "90x" is not a duration');
    expect(result.stderr).toContain('colour: unknown key');
  });
});
