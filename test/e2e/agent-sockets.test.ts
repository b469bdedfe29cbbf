// Issue 10, item 3: an agent's sockets on a fresh machine, and a second agent on a live one's sockets,
// with real processes and real users. Every refusal comes before attestation (the join token stays
// unspent) and is one line naming the path and what to do, never a stack trace.
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asUser } from '../support/daemon.js';
import type { ServerProcess } from '../support/harness.js';
import { joinToken, uidEntry } from '../support/registration.js';
import { agent, modeOf, run, SocketLab, withFreshRun } from '../support/socket-lab.js';

const TD = 'spiffe://example.org';
/** A user of our own, fresh each run so that /tmp/sigil-agent-<uid> never pre-exists. */
const USER = 30_000 + Math.floor(Math.random() * 30_000);
const WORKLOAD_UID = 1000;
const STARTED = /"msg":"Sigil agent started"/;
const lab = new SocketLab();
afterEach(() => lab.cleanup());

/** Agents that attested so far, as the server knows them. */
async function attestedAgents(srv: ServerProcess): Promise<string> {
  return (await srv.cli('agent', 'list', '--output', 'json')).stdout;
}

function expectOneLineRefusal(output: string, line: string): void {
  expect(output).toContain(`sigil-agent run: ${line}\n`);
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toContain('Node attested');
}

describe('a second agent refuses to take over a running agent’s sockets', () => {
  it('exits non-zero before attesting, on the same Workload API socket or the same admin socket; the first keeps serving', async () => {
    const { srv, agentArgs } = await lab.serverForAgents(TD);
    await uidEntry(srv, 'web', WORKLOAD_UID);
    const root = lab.tempDir(0o755);
    const socketPath = path.join(root, 'public', 'api.sock');
    const adminSocket = path.join(root, 'private', 'admin.sock');
    const first = lab.spawn(
      agentArgs(
        '--data-dir',
        path.join(root, 'data1'),
        '--socket-path',
        socketPath,
        '--admin-socket',
        adminSocket,
      ),
    );
    await first.started(STARTED);
    const token = await joinToken(srv);
    const withToken = (args: string[]) =>
      args.map((arg, i) => (args[i - 1] === '--join-token' ? token : arg));

    const sameBoth = await lab.runToExit(
      withToken(
        agentArgs(
          '--data-dir',
          path.join(root, 'data2'),
          '--socket-path',
          socketPath,
          '--admin-socket',
          adminSocket,
        ),
      ),
    );
    expect(sameBoth.code).not.toBe(0);
    expectOneLineRefusal(
      sameBoth.output,
      `socket_path: ${socketPath} is served by a running process; stop it or choose another path`,
    );

    const sameAdmin = await lab.runToExit(
      withToken(
        agentArgs(
          '--data-dir',
          path.join(root, 'data2'),
          '--socket-path',
          path.join(root, 'other', 'api.sock'),
          '--admin-socket',
          adminSocket,
        ),
      ),
    );
    expect(sameAdmin.code).not.toBe(0);
    expectOneLineRefusal(
      sameAdmin.output,
      `admin_socket: ${adminSocket} is served by a running process; stop it or choose another path`,
    );
    expect(await attestedAgents(srv)).not.toContain(token);

    // The first agent still answers on both sockets.
    const health = await run(agent('healthcheck', '--admin-socket', adminSocket));
    expect(health.code, health.stderr).toBe(0);
    const fetched = await run(
      asUser(WORKLOAD_UID, agent('api', 'fetch', 'x509', '--output', 'json', '--socket-path', socketPath)),
    );
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(JSON.parse(fetched.stdout).svids[0].spiffe_id).toBe(`${TD}/web`);
    expect(first.child.exitCode).toBeNull();
  });
});

describe('the sockets of an agent on a fresh machine', () => {
  it('a user: both directories under /tmp/sigil-agent-<uid> are created before attestation', async () => {
    const { agentArgs } = await lab.serverForAgents(TD);
    const own = lab.removeAfter(`/tmp/sigil-agent-${USER}`);
    const dataDir = path.join(lab.tempDir(0o700, USER), 'data');
    const daemon = lab.spawn(withFreshRun(asUser(USER, agentArgs('--data-dir', dataDir))));
    await daemon.started(STARTED);
    expect([modeOf(own), modeOf(`${own}/public`), modeOf(`${own}/private`)]).toEqual([
      `755 uid=${USER}`,
      `755 uid=${USER}`,
      `700 uid=${USER}`,
    ]);
    expect([modeOf(`${own}/public/api.sock`), modeOf(`${own}/private/admin.sock`)]).toEqual([
      `777 uid=${USER}`,
      `600 uid=${USER}`,
    ]);
  });

  it('a directory it may not write: one line naming it, before the join token is spent', async () => {
    const { srv, agentArgs } = await lab.serverForAgents(TD);
    const root = lab.tempDir(0o755, USER);
    const publicDir = path.join(root, 'public');
    mkdirSync(publicDir);
    chmodSync(publicDir, 0o555);
    chownSync(publicDir, USER, USER);
    const args = agentArgs(
      '--data-dir',
      path.join(root, 'data'),
      '--socket-path',
      path.join(publicDir, 'api.sock'),
      '--admin-socket',
      path.join(root, 'private', 'admin.sock'),
    );
    const refused = await lab.runToExit(asUser(USER, args));
    expect(refused.code).toBe(2);
    expectOneLineRefusal(
      refused.output,
      `socket_path: cannot listen on ${publicDir}/api.sock: EACCES; uid ${USER} may not create files in ${publicDir}; give this user write access to it, or choose another path with socket_path`,
    );
    expect(await attestedAgents(srv)).not.toContain('join_token');

    // Fixed, the same token attests.
    chmodSync(publicDir, 0o755);
    const fixed = lab.spawn(asUser(USER, args));
    await fixed.started(STARTED);
    expect(fixed.output()).toContain('Node attested');
  });

  it('a data dir it cannot create: one line naming it, before the join token is spent', async () => {
    const { srv, agentArgs } = await lab.serverForAgents(TD);
    const root = lab.tempDir(0o755, USER);
    const dataDir = path.join(lab.tempDir(0o755), 'data');
    const refused = await lab.runToExit(
      asUser(
        USER,
        agentArgs(
          '--data-dir',
          dataDir,
          '--socket-path',
          path.join(root, 'public', 'api.sock'),
          '--admin-socket',
          path.join(root, 'private', 'admin.sock'),
        ),
      ),
    );
    expect(refused.code).toBe(2);
    expectOneLineRefusal(
      refused.output,
      `data_dir: cannot create ${dataDir}: EACCES; give this user write access to its parent, or choose another directory with data_dir`,
    );
    expect(await attestedAgents(srv)).not.toContain('join_token');
  });
});
