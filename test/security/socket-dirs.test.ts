// Issue 9, item 5: socket directories are no longer trusted blindly. Real processes and real users:
// another user (nobody) pre-creates a daemon's socket directory, or plants a socket where a CLI
// looks; the daemons refuse to start and the CLIs refuse to connect (exit 5), and each says why.
// The defaults on a fresh machine are in socket-defaults.test.ts.
import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asUser } from '../support/daemon.js';
import { agent, modeOf, NOBODY, run, SocketLab, server } from '../support/socket-lab.js';

const TD = 'spiffe://example.org';
/** A user of our own, fresh each run so that /tmp/sigil-server-<uid> never pre-exists. */
const USER = 30_000 + Math.floor(Math.random() * 30_000);
const lab = new SocketLab();
afterEach(() => lab.cleanup());

const serverRun = (...args: string[]) =>
  server('run', '--trust-domain', 'example.org', '--bind', '127.0.0.1:0', ...args);

/** Runs a daemon that must refuse to start; returns what it printed. */
async function refusedStart(argv: readonly string[]): Promise<string> {
  const { code, output } = await lab.runToExit(argv);
  expect(code, output).not.toBe(0);
  return output;
}

describe('a socket directory another user created first stops the daemon', () => {
  it('sigil-server refuses to start, touching neither that directory nor its data dir', async () => {
    const planted = path.join(lab.tempDir(0o1777), 'sigil-server');
    expect((await run(asUser(NOBODY, ['mkdir', planted]))).code).toBe(0);
    const dataDir = path.join(lab.tempDir(), 'data');
    const stderr = await refusedStart(
      serverRun('--data-dir', dataDir, '--admin-socket', path.join(planted, 'private', 'admin.sock')),
    );
    expect(stderr).toContain(
      `admin_socket: directory "${planted}" belongs to someone else (owner uid ${NOBODY}, mode `,
    );
    expect(stderr).toContain('not to uid 0 (you) or root: its owner could swap the socket');
    expect(readdirSync(planted)).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('sigil-server run by a user refuses its default directory when nobody made it first', async () => {
    const planted = lab.removeAfter(`/tmp/sigil-server-${USER}`);
    expect((await run(asUser(NOBODY, ['mkdir', '-p', path.join(planted, 'private')]))).code).toBe(0);
    const stderr = await refusedStart(asUser(USER, serverRun('--data-dir', lab.tempDir(0o700, USER))));
    expect(stderr).toContain(`directory "${planted}" belongs to someone else (owner uid ${NOBODY}`);
  });

  it('sigil-agent refuses to start before attesting, so its join token stays unspent', async () => {
    const { srv, agentArgs } = await lab.serverForAgents(TD);
    const planted = path.join(lab.tempDir(0o1777), 'sigil-agent');
    expect((await run(asUser(NOBODY, ['mkdir', '-p', path.join(planted, 'public')]))).code).toBe(0);
    const root = lab.tempDir(0o755);
    const ownSockets = ['--admin-socket', path.join(root, 'private', 'admin.sock')];
    const refused = await refusedStart(
      agentArgs(
        '--data-dir',
        path.join(root, 'data'),
        '--socket-path',
        path.join(planted, 'public', 'api.sock'),
        ...ownSockets,
      ),
    );
    expect(refused).toContain(
      `socket_path: directory "${planted}" belongs to someone else (owner uid ${NOBODY}`,
    );
    expect(refused).toContain('"msg":"Unsafe socket path refused"');
    expect(refused).not.toContain('Node attested');
    expect((await srv.cli('agent', 'list', '--output', 'json')).stdout).not.toContain('join_token');

    // The same token still attests an agent whose directories are its own.
    const good = lab.spawn(
      agentArgs(
        '--data-dir',
        path.join(root, 'data'),
        '--socket-path',
        path.join(root, 'public', 'api.sock'),
        ...ownSockets,
      ),
    );
    await good.started(/"msg":"Sigil agent started"/);
  });
});

describe('a data directory another user owns is refused: its owner could read the keys', () => {
  it('sigil-server refuses to start and writes no key into it', async () => {
    const dataDir = lab.tempDir(0o755, NOBODY);
    const stderr = await refusedStart(
      serverRun('--data-dir', dataDir, '--admin-socket', path.join(lab.tempDir(), 'private', 'admin.sock')),
    );
    expect(stderr).toContain(`directory "${dataDir}" belongs to uid ${NOBODY}, not to uid 0 (this process)`);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

describe('a directory others may write is refused', () => {
  it('sigil-server refuses an admin socket directory its group may write, and leaves its mode alone', async () => {
    const loose = path.join(lab.tempDir(), 'loose');
    mkdirSync(loose);
    chmodSync(loose, 0o770);
    const stderr = await refusedStart(
      serverRun(
        '--data-dir',
        path.join(lab.tempDir(), 'd'),
        '--admin-socket',
        path.join(loose, 'admin.sock'),
      ),
    );
    expect(stderr).toContain(
      `admin_socket: socket directory "${loose}" is writable by its group (owner uid 0, mode 0770)`,
    );
    expect(modeOf(loose)).toBe('770 uid=0');
  });

  it('sigil-agent refuses a world-writable Workload API directory', async () => {
    const root = lab.tempDir(0o755);
    const open = path.join(root, 'public');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const stderr = await refusedStart(
      agent(
        'run',
        '--server-address',
        '127.0.0.1:1',
        '--trust-domain',
        'example.org',
        '--insecure-bootstrap',
        '--join-token',
        'never-sent',
        '--data-dir',
        path.join(root, 'data'),
        '--socket-path',
        path.join(open, 'api.sock'),
        '--admin-socket',
        path.join(root, 'private', 'admin.sock'),
      ),
    );
    expect(stderr).toContain(
      `socket_path: socket directory "${open}" is writable by every user (owner uid 0, mode 0777)`,
    );
  });
});

describe('a socket planted by another user: the CLIs refuse to talk to it (exit 5)', () => {
  it('sigil-server, given the planted path', async () => {
    const planted = path.join(lab.tempDir(0o1777), 'evil', 'admin.sock');
    const impostor = await lab.plantSocket(planted);
    const result = await run(server('entry', 'show', '--admin-socket', planted));
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(
      `--admin-socket: directory "${path.dirname(planted)}" belongs to someone else (owner uid ${NOBODY}`,
    );
    expect(impostor.output()).not.toContain('IMPOSTOR CONNECTED');
  });

  it("sigil-server run by a user, at that user's default path", async () => {
    const planted = path.join(lab.removeAfter(`/tmp/sigil-server-${USER}`), 'private', 'admin.sock');
    const impostor = await lab.plantSocket(planted);
    const result = await run(asUser(USER, server('healthcheck')));
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`belongs to someone else (owner uid ${NOBODY}`);
    expect(impostor.output()).not.toContain('IMPOSTOR CONNECTED');
  });

  it('sigil-agent healthcheck and sigil-agent api', async () => {
    const dir = path.join(lab.tempDir(0o1777), 'evil');
    const planted = path.join(dir, 'admin.sock');
    const impostor = await lab.plantSocket(planted);
    const health = await run(agent('healthcheck', '--admin-socket', planted));
    expect(health.code).toBe(5);
    expect(health.stderr).toContain(
      `--admin-socket: directory "${dir}" belongs to someone else (owner uid ${NOBODY}`,
    );
    const fetch = await run(agent('api', 'fetch', 'x509', '--socket-path', planted));
    expect(fetch.code).toBe(5);
    expect(fetch.stderr).toContain(`--socket-path: directory "${dir}" belongs to someone else`);
    expect(impostor.output()).not.toContain('IMPOSTOR CONNECTED');
  });

  it("sigil-agent api trusts another user's socket only when told that user runs the agent", async () => {
    const planted = path.join(lab.tempDir(0o1777), 'agent', 'api.sock');
    const daemon = await lab.plantSocket(planted);
    const named = await run(
      agent(
        'api',
        'fetch',
        'x509',
        '--socket-path',
        planted,
        '--socket-owner',
        String(NOBODY),
        '--timeout',
        '2000',
      ),
    );
    expect(named.code).not.toBe(5);
    expect(daemon.output()).toContain('IMPOSTOR CONNECTED');
  });
});
