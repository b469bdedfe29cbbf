// Issue 10: one agent per data dir, with real processes. A second agent on a running agent's data
// dir (its own sockets elsewhere) exits with one line naming the holder's pid, before it attests or
// touches a socket; the first keeps serving. A kill -9'd agent leaves a claim the next start takes over.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asUser } from '../support/daemon.js';
import { joinToken, uidEntry } from '../support/registration.js';
import { agent, run, SocketLab } from '../support/socket-lab.js';

const TD = 'spiffe://example.org';
const WORKLOAD_UID = 1000;
const STARTED = /"msg":"Sigil agent started"/;
const lab = new SocketLab();
afterEach(() => lab.cleanup());

describe('one agent per data dir', () => {
  it('refuses a second agent on a live agent’s data dir before attesting or touching sockets; a kill -9 frees it', async () => {
    const { srv, agentArgs } = await lab.serverForAgents(TD);
    await uidEntry(srv, 'web', WORKLOAD_UID);
    const root = lab.tempDir(0o755);
    const dataDir = path.join(root, 'data');
    const sockets = (name: string) => [
      '--socket-path',
      path.join(root, name, 'public', 'api.sock'),
      '--admin-socket',
      path.join(root, name, 'private', 'admin.sock'),
    ];
    const first = lab.spawn(agentArgs('--data-dir', dataDir, ...sockets('first')));
    await first.started(STARTED);

    const token = await joinToken(srv, `${TD}/node2`);
    const second = await lab.runToExit(
      agentArgs('--data-dir', dataDir, ...sockets('second')).map((arg, i, all) =>
        all[i - 1] === '--join-token' ? token : arg,
      ),
    );
    expect(second.code).toBe(1);
    expect(second.output).toContain(
      `sigil-agent run: data_dir ${dataDir} is in use by sigil-agent pid ${first.child.pid}; stop it or use another --data-dir\n`,
    );
    expect(second.output).not.toMatch(/^\s+at /m);
    expect(second.output).not.toContain('Node attested');
    // Neither its socket directories nor the token were touched.
    expect(existsSync(path.join(root, 'second'))).toBe(false);
    expect((await srv.cli('agent', 'list', '--output', 'json')).stdout).not.toContain(token);

    // The first agent still serves on both of its sockets.
    const health = await run(
      agent('healthcheck', '--admin-socket', path.join(root, 'first/private/admin.sock')),
    );
    expect(health.code, health.stdout + health.stderr).toBe(0);
    const fetched = await run(
      asUser(
        WORKLOAD_UID,
        agent(
          'api',
          'fetch',
          'x509',
          '--output',
          'json',
          '--socket-path',
          path.join(root, 'first/public/api.sock'),
        ),
      ),
    );
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(JSON.parse(fetched.stdout).svids[0].spiffe_id).toBe(`${TD}/web`);
    expect(first.child.exitCode).toBeNull();

    // Killed without a chance to release its claim, the first agent does not block the next start.
    await first.stop('SIGKILL');
    const next = lab.spawn(agentArgs('--data-dir', dataDir, ...sockets('second')));
    await next.started(STARTED);
    expect(next.output()).toContain('Reusing the saved agent SVID');
  });
});
