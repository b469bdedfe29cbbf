// The README's CA replacement walkthrough, run exactly as written (the commands are read from the
// README itself), against a server with a live join-token agent and two workloads calling each
// other over mTLS with Workload API SVIDs the whole time: no call fails, both workloads end on the
// new CA, the old one leaves the bundle, and the agent is not locked out (healthy, and still
// reaching the server after a restart on its saved SVID).
import { X509Certificate } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AGENT_BIN,
  type AgentProcess,
  asWorkload,
  freePort,
  makeSharedDir,
  startAgentProcess,
  waitFor,
} from '../support/agent-harness.js';
import { asUser, spawnDaemon } from '../support/daemon.js';
import { REPO_ROOT, runCommand, startServerProcess } from '../support/harness.js';
import { joinToken, TD, uidEntry, writeBundlePem } from '../support/registration.js';

const CLIENT_UID = 65534;
const BACKEND_UID = 1;
const SDK = path.join(REPO_ROOT, 'dist', 'src', 'sdk', 'index.js');
const PEER = path.join(REPO_ROOT, 'test', 'fixtures', 'mtls-peer.mjs');
/** Long enough to cover the whole walkthrough (publish lead, taint, agents moving) with calls. */
const CALLS_FOR_MS = 25_000;

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The `localauthority` commands of the README's walkthrough, in order, as written. */
function readmeWalkthrough(): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const from = readme.indexOf('Operators see and steer rotation with `localauthority`');
  expect(from, 'the README lost its rotation walkthrough').toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))![1]!;
  return block
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.startsWith('bin/sigil-server '));
}

function peer(uid: number, args: string[]) {
  return spawnDaemon(asUser(uid, [process.execPath, PEER, ...args]), { name: `${args[0]} peer` });
}

async function healthcheck(agent: AgentProcess) {
  const res = await runCommand(process.execPath, [
    AGENT_BIN,
    'healthcheck',
    '--admin-socket',
    agent.adminSocket,
    '--output',
    'json',
  ]);
  return { code: res.code, body: res.stdout };
}

describe('the README rotation walkthrough', () => {
  it('replaces the CA as written with live mTLS traffic, locking no agent out', async () => {
    const steps = readmeWalkthrough();
    expect(steps.map((s) => s.split(' ').slice(1, 3).join(' '))).toEqual([
      'localauthority show',
      'localauthority prepare',
      'localauthority activate',
      'localauthority taint',
      'localauthority revoke',
    ]);
    const root = makeSharedDir('sigil-walkthrough-');
    cleanups.push(root.cleanup);
    const config = path.join(root.dir, 'server.yaml');
    writeFileSync(
      config,
      [
        'trust_domain: example.org',
        'min_svid_ttl: 1s',
        'ca:',
        '  publish_lead: 4s',
        'default_x509_svid_ttl: 20s',
        'agent_svid_ttl: 60s',
      ].join('\n'),
    );
    const server = await startServerProcess({ configFile: config, dataDir: path.join(root.dir, 'server') });
    cleanups.push(() => server.stop());
    await uidEntry(server, 'client', CLIENT_UID);
    await uidEntry(server, 'backend', BACKEND_UID);
    const agentOptions = {
      root: path.join(root.dir, 'agent'),
      joinToken: await joinToken(server),
      trustBundlePath: await writeBundlePem(server, path.join(root.dir, 'bundle.pem')),
    };
    let agent = await startAgentProcess(server, agentOptions);
    cleanups.push(() => agent.stop());
    const socket = `unix://${agent.socketPath}`;

    const port = await freePort();
    const backend = peer(BACKEND_UID, ['server', SDK, socket, String(port), `${TD}/client`]);
    cleanups.push(() => backend.child.kill('SIGKILL'));
    await backend.waitForOutput('"listening"', 20_000);
    const client = peer(CLIENT_UID, [
      'client',
      SDK,
      socket,
      String(port),
      `${TD}/backend`,
      String(CALLS_FOR_MS),
    ]);
    cleanups.push(() => client.child.kill('SIGKILL'));
    const callsStartedMs = Date.now();

    const show = async () =>
      JSON.parse((await server.cli('localauthority', 'show', '--output', 'json')).stdout).x509 as Array<{
        id: string;
        state: string;
      }>;
    const [original] = await show();
    const oldId = original!.id;

    for (const step of steps) {
      const args = step.replace('<old CA id>', oldId).split(/\s+/).slice(1);
      const res = await server.cli(...args);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0);
    }
    const walkthroughMs = Date.now() - callsStartedMs;
    // The calls must have run across the whole walkthrough, or the test proves nothing about them.
    expect(walkthroughMs).toBeLessThan(CALLS_FOR_MS - 3_000);

    const authorities = await show();
    expect(authorities.map((a) => a.id)).not.toContain(oldId);
    expect(authorities.map((a) => a.state)).toEqual(['active']);
    const newId = authorities[0]!.id;

    expect(await client.exited).toBe(0);
    const calls = JSON.parse(client.output().trim().split('\n').pop()!) as {
      ok: number;
      failed: number;
      errors: string[];
      clientIssuers: number;
    };
    console.log(`walkthrough: ${JSON.stringify({ walkthroughMs, ...calls })}`);
    expect(calls.failed, calls.errors.join('\n')).toBe(0);
    expect(calls.ok).toBeGreaterThan(100);
    expect(calls.clientIssuers).toBeGreaterThanOrEqual(2);

    // Every workload is still served, by the new CA only.
    const bundle = (await server.cli('bundle', 'show', '--format', 'pem')).stdout;
    const cas = (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
      (pem) => new X509Certificate(pem),
    );
    expect(cas).toHaveLength(1);
    const servedByNewCa = async (uid: number) => {
      const dir = path.join(root.dir, `svids-${uid}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chownSync(dir, uid, 0);
      const res = await asWorkload(uid, agent, 'fetch', 'x509', '--write', dir);
      if (res.code !== 0) return false;
      const leaf = readFileSync(path.join(dir, 'svid.0.pem'), 'utf8');
      return new X509Certificate(leaf).verify(cas[0]!.publicKey);
    };
    for (const uid of [CLIENT_UID, BACKEND_UID]) {
      await waitFor(
        () => servedByNewCa(uid),
        10_000,
        () => `uid ${uid} is not served an SVID from ${newId}`,
      );
    }

    // No agent locked out: healthy now, and after a restart on its saved SVID it still reaches the server.
    const health = await healthcheck(agent);
    expect(health.code, health.body).toBe(0);
    await agent.stop();
    agent = await startAgentProcess(server, agentOptions);
    await waitFor(
      async () => JSON.parse((await healthcheck(agent)).body).server_connected === true,
      15_000,
      () => `the restarted agent did not reach the server:\n${agent.logs()}`,
    );
    expect(agent.logs()).toContain('Reusing the saved agent SVID');
    expect(await servedByNewCa(CLIENT_UID)).toBe(true);
  }, 120_000);
});
