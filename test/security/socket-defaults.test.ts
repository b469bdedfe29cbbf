// Issue 9, item 5: the socket defaults on a fresh machine, with real processes. Root gets
// /run/sigil-server and /run/sigil-agent (each test has a private, empty tmpfs on /run in a mount
// namespace of its own); any other user a per-user directory; and each CLI finds its daemon's
// socket with no flag, because both compute the same default for the same user.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asUser } from '../support/daemon.js';
import { uidEntry } from '../support/registration.js';
import { agent, CLEAN_ENV, modeOf, run, SocketLab, server, withFreshRun } from '../support/socket-lab.js';

const TD = 'spiffe://example.org';
/** A user of our own, fresh each run so that /tmp/sigil-server-<uid> never pre-exists. */
const USER = 30_000 + Math.floor(Math.random() * 30_000);
const WORKLOAD_UID = 1000;
const lab = new SocketLab();
afterEach(() => lab.cleanup());

const serverRun = (dataDir: string) =>
  server('run', '--trust-domain', 'example.org', '--bind', '127.0.0.1:0', '--data-dir', dataDir);
const STARTED_SERVER = /"msg":"Sigil server started"/;

describe('the socket defaults on a fresh machine', () => {
  it('root: sigil-server makes /run/sigil-server/private, and the CLI finds it without flags', async () => {
    const daemon = lab.spawn(withFreshRun(serverRun(lab.tempDir())));
    await daemon.started(STARTED_SERVER);
    expect(daemon.output()).toContain('"adminSocket":"/run/sigil-server/private/admin.sock"');
    const modes = await run(
      daemon.inItsNamespace([
        'stat',
        '-c',
        '%a %u %F',
        '/run/sigil-server',
        '/run/sigil-server/private',
        '/run/sigil-server/private/admin.sock',
      ]),
    );
    expect(modes.stdout.trim().split('\n')).toEqual(['755 0 directory', '700 0 directory', '600 0 socket']);
    const health = await run(daemon.inItsNamespace(server('healthcheck')));
    expect(health.code, health.stderr).toBe(0);
  });

  it("another user: /tmp/sigil-server-<uid>, or a safe $XDG_RUNTIME_DIR, found by that user's CLI", async () => {
    const own = lab.removeAfter(`/tmp/sigil-server-${USER}`);
    const plain = lab.spawn(asUser(USER, serverRun(lab.tempDir(0o700, USER))));
    await plain.started(STARTED_SERVER);
    expect([modeOf(own), modeOf(`${own}/private`), modeOf(`${own}/private/admin.sock`)]).toEqual([
      `755 uid=${USER}`,
      `700 uid=${USER}`,
      `600 uid=${USER}`,
    ]);
    expect((await run(asUser(USER, server('healthcheck')))).code).toBe(0);
    plain.child.kill('SIGTERM');
    await plain.exited;

    const xdg = lab.tempDir(0o700, USER);
    const env = { ...CLEAN_ENV, XDG_RUNTIME_DIR: xdg };
    const withXdg = lab.spawn(asUser(USER, serverRun(lab.tempDir(0o700, USER))), env);
    await withXdg.started(STARTED_SERVER);
    expect(modeOf(path.join(xdg, 'sigil-server', 'private', 'admin.sock'))).toBe(`600 uid=${USER}`);
    expect((await run(asUser(USER, server('healthcheck')), env)).code).toBe(0);
  });

  it('root: sigil-agent makes /run/sigil-agent/{public,private}; its CLI and a workload find them', async () => {
    const { srv, agentArgs } = await lab.serverForAgents(TD);
    await uidEntry(srv, 'web', WORKLOAD_UID);
    const daemon = lab.spawn(withFreshRun(agentArgs('--data-dir', path.join(lab.tempDir(), 'data'))));
    await daemon.started(/"msg":"Sigil agent started"/);
    const modes = await run(
      daemon.inItsNamespace([
        'stat',
        '-c',
        '%a %u %F',
        '/run/sigil-agent',
        '/run/sigil-agent/public',
        '/run/sigil-agent/public/api.sock',
        '/run/sigil-agent/private',
        '/run/sigil-agent/private/admin.sock',
      ]),
    );
    expect(modes.stdout.trim().split('\n')).toEqual([
      '755 0 directory',
      '755 0 directory',
      '777 0 socket',
      '700 0 directory',
      '600 0 socket',
    ]);
    const health = await run(daemon.inItsNamespace(agent('healthcheck')));
    expect(health.code, health.stderr).toBe(0);
    const fetched = await run(
      daemon.inItsNamespace(asUser(WORKLOAD_UID, agent('api', 'fetch', 'x509', '--output', 'json'))),
    );
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(JSON.parse(fetched.stdout).svids[0].spiffe_id).toBe(`${TD}/web`);
  });
});
