// Start-up safety with real processes: one server per data dir (a second one, started beside it or at
// the same instant, is refused by name and pid; a kill -9'd one does not block the next start), and a
// config that cannot work is refused before the data dir is touched, attestors and upstream CA included.
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, spawnDaemon } from '../support/daemon.js';
import {
  makeTempDir,
  runCommand,
  SERVER_BIN,
  type ServerProcess,
  startServerProcess,
} from '../support/harness.js';

const TD = 'example.org';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const tmp = makeTempDir();
  cleanups.push(tmp.cleanup);
  return tmp.dir;
}

async function start(dataDir: string): Promise<ServerProcess> {
  const server = await startServerProcess({ trustDomain: TD, dataDir });
  cleanups.push(() => server.stop());
  return server;
}

/** `sigil-server run` to completion, with its own admin socket outside `dataDir`. */
function runToExit(dataDir: string, ...extra: string[]) {
  return runCommand(process.execPath, [
    SERVER_BIN,
    'run',
    '--data-dir',
    dataDir,
    '--admin-socket',
    path.join(tempDir(), 'admin.sock'),
    '--bind',
    '127.0.0.1:0',
    ...extra,
  ]);
}

describe('one server per data dir', () => {
  it('refuses a second server on a data dir in use, naming the dir and the holder, with no stack trace', async () => {
    const dataDir = tempDir();
    const first = await start(dataDir);
    const filesBefore = readdirSync(dataDir).sort();

    const second = await runToExit(dataDir, '--trust-domain', TD);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      `sigil-server run: data_dir ${dataDir} is in use by sigil-server pid ${first.child.pid}; stop it or use another --data-dir\n`,
    );
    expect(second.stdout).toBe('');
    expect(readdirSync(dataDir).sort()).toEqual(filesBefore);
    expect((await first.cli('healthcheck')).code).toBe(0);
  });

  it('lets the next server start after a kill -9, and after a clean stop', async () => {
    const dataDir = tempDir();
    const killed = await startServerProcess({ trustDomain: TD, dataDir });
    await killed.kill9();
    const restarted = await start(dataDir);
    expect((await restarted.cli('healthcheck')).code).toBe(0);
    expect(await restarted.stop()).toBe(0);
    const again = await start(dataDir);
    expect((await again.cli('healthcheck')).code).toBe(0);
  });

  it('of two servers started at the same instant on one data dir, exactly one runs', async () => {
    const dataDir = tempDir();
    const racers: Daemon[] = [0, 1].map(() =>
      spawnDaemon(
        [
          process.execPath,
          SERVER_BIN,
          'run',
          '--trust-domain',
          TD,
          '--data-dir',
          dataDir,
          '--admin-socket',
          path.join(tempDir(), 'admin.sock'),
          '--bind',
          '127.0.0.1:0',
        ],
        { name: 'sigil-server' },
      ),
    );
    for (const racer of racers) cleanups.push(() => racer.stop());
    const outcomes = await Promise.all(
      racers.map((racer) =>
        racer.waitForOutput('"msg":"Sigil server started"', 20_000).then(
          () => 'started',
          () => racer.output(),
        ),
      ),
    );
    expect(outcomes.filter((o) => o === 'started')).toHaveLength(1);
    const loser = racers[outcomes.indexOf('started') === 0 ? 1 : 0]!;
    expect(await loser.exited).toBe(1);
    expect(loser.output()).toContain(`data_dir ${dataDir} is in use by sigil-server pid`);
  });
});

describe('a config that cannot work is refused before the data dir is touched', () => {
  it('a broken node attestor config: exit 2, every problem named, no keys and no store written', async () => {
    const dataDir = tempDir();
    const config = path.join(tempDir(), 'server.yaml');
    writeFileSync(
      config,
      `trust_domain: ${TD}\nnode_attestors:\n  x509pop:\n    ca_bundle_path: /nonexistent/ca.pem\n`,
    );
    const result = await runToExit(dataDir, '--config', config);
    expect(result.stderr).toContain('node_attestors.x509pop.ca_bundle_path: cannot read /nonexistent/ca.pem');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.code).toBe(2);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('an unusable upstream CA: exit 1, the file named, no keys and no store written', async () => {
    const dataDir = tempDir();
    const config = path.join(tempDir(), 'server.yaml');
    writeFileSync(
      config,
      `trust_domain: ${TD}\nca:\n  upstream:\n    cert_file: /nonexistent/up.pem\n    key_file: /nonexistent/up.key\n`,
    );
    const result = await runToExit(dataDir, '--config', config);
    expect(result.stderr).toContain('cannot read /nonexistent/up.pem');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.code).toBe(1);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
