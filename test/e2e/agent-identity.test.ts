// The agent's own identity heals, with real processes: a first attestation waits for a server that
// is down, an evicted agent restarted with a new --join-token attests again, and an agent whose
// saved bundle is stale says how to fix it, and the fix (a current --trust-bundle-path) works.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  asWorkload,
  freePort,
  makeSharedDir,
  startAgentProcess,
  waitFor,
} from '../support/agent-harness.js';
import { type ServerProcess, startServerProcess } from '../support/harness.js';
import { joinToken, TD, uidEntry, writeBundlePem } from '../support/registration.js';

const NOBODY = 65534;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function newServer(root: string, name: string, port?: number): Promise<ServerProcess> {
  const server = await startServerProcess({ dataDir: path.join(root, name), agentApiPort: port });
  cleanups.push(() => server.stop());
  return server;
}

async function serves(agent: AgentProcess): Promise<boolean> {
  const res = await asWorkload(NOBODY, agent, 'fetch', 'x509', '--output', 'json', '--timeout', '3000');
  return res.code === 0 && JSON.parse(res.stdout).svids[0]?.spiffe_id === `${TD}/web`;
}

function started(agent: AgentProcess): AgentProcess {
  cleanups.push(() => agent.stop());
  return agent;
}

describe('the agent identity', () => {
  it('waits for a server that is down at first attestation instead of exiting', async () => {
    const root = makeSharedDir('sigil-first-attest-');
    cleanups.push(root.cleanup);
    const port = await freePort();
    let server = await newServer(root.dir, 'server', port);
    const bundle = await writeBundlePem(server, path.join(root.dir, 'bundle.pem'));
    const token = await joinToken(server);
    await uidEntry(server, 'web', NOBODY);
    await server.stop();

    const agentStarting = startAgentProcess(server, {
      root: path.join(root.dir, 'agent'),
      joinToken: token,
      trustBundlePath: bundle,
    });
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    server = await newServer(root.dir, 'server', port);
    const agent = started(await agentStarting);
    expect(agent.logs()).toMatch(/"attempt":1,[^\n]*"msg":"Cannot reach the server to attest; retrying"/);
    await waitFor(
      () => serves(agent),
      20_000,
      () => `not served:\n${agent.logs()}`,
    );
  }, 60_000);

  it('explains a stale bundle, unions a current one into it, and re-attests with a new --join-token when its saved SVID is refused', async () => {
    const root = makeSharedDir('sigil-heal-');
    cleanups.push(root.cleanup);
    const agentRoot = path.join(root.dir, 'agent');
    const old = await newServer(root.dir, 'old');
    const oldBundle = await writeBundlePem(old, path.join(root.dir, 'old.pem'));
    await uidEntry(old, 'web', NOBODY);
    const first = await startAgentProcess(old, {
      root: agentRoot,
      joinToken: await joinToken(old),
      trustBundlePath: oldBundle,
    });
    await waitFor(
      () => serves(first),
      20_000,
      () => `not served:\n${first.logs()}`,
    );
    const meta = readFileSync(path.join(first.dataDir, 'agent.json'), 'utf8');
    expect(meta).toMatch(/"join_token_sha256":"[0-9a-f]{64}"/);
    await first.stop();
    // Without the old server's entries and SVIDs (svid_store), which the agent would serve from disk
    // and so be degraded, not unhealthy: this is about its own identity and "nothing to serve".
    rmSync(path.join(first.dataDir, 'workload-svids.json'));

    // Same data dir, a server with another CA: the saved bundle is stale.
    const current = await newServer(root.dir, 'current');
    await uidEntry(current, 'web', NOBODY);
    const stale = started(await startAgentProcess(current, { root: agentRoot, trustBundlePath: oldBundle }));
    await stale.waitForLog(
      /does not contain; the bundle is stale: get the current one with `sigil-server bundle show/,
    );
    expect(stale.logs()).toContain(`saved ${path.join(stale.dataDir, 'bundle.json')}, sequence`);
    const health = await asAdmin(stale);
    expect(health.code).toBe(1);
    expect(health.stderr).toMatch(/Agent is unhealthy/);
    await stale.stop();

    // The advice followed, with a new token: the current bundle is merged in, the server refuses the
    // old SVID, the new token is used.
    const currentBundle = await writeBundlePem(current, path.join(root.dir, 'current.pem'));
    const healed = started(
      await startAgentProcess(current, {
        root: agentRoot,
        joinToken: await joinToken(current),
        trustBundlePath: currentBundle,
      }),
    );
    expect(healed.logs()).toContain('A new join token was given');
    await healed.waitForLog(/"reason":"refused: [^"]*"[^\n]*"msg":"Node attested"/);
    await waitFor(
      () => serves(healed),
      20_000,
      () => `not served:\n${healed.logs()}`,
    );
    expect(readFileSync(path.join(healed.dataDir, 'agent.json'), 'utf8')).not.toBe(meta);
    await waitFor(
      async () => (await asAdmin(healed)).code === 0,
      20_000,
      () => 'never healthy',
    );
  }, 90_000);
});

async function asAdmin(agent: AgentProcess) {
  const { runCommand } = await import('../support/harness.js');
  const { AGENT_BIN } = await import('../support/agent-harness.js');
  return runCommand(process.execPath, [AGENT_BIN, 'healthcheck', '--admin-socket', agent.adminSocket]);
}
