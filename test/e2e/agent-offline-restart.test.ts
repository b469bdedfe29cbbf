// Issue 10, item 2, with real processes: an agent restarted (kill -9, then a clean stop) while the
// server is down keeps serving every workload the SVID it had, over the real Workload API socket,
// from the 0600 cache file in its data dir; its logs carry no key; a corrupted file is ignored
// with a warning; once the server is back, the normal sync replaces the cache, on disk too.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import {
  AGENT_BIN,
  type AgentProcess,
  asWorkload,
  freePort,
  makeSharedDir,
  startAgentProcess,
  waitFor,
} from '../support/agent-harness.js';
import { makeTempDir, runCommand, type ServerProcess, startServerProcess } from '../support/harness.js';
import { joinToken, uidEntry, writeBundlePem } from '../support/registration.js';

const TD = 'spiffe://example.org';
const WORKLOAD_UID = 65534;
const CACHE_FILE = 'workload-svids.json';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface CacheFile {
  revision: number;
  entries: Array<{ id: string; spiffeId: string }>;
  svids: Array<{ entry_id: string; key: string }>;
}

/** The workload's SVIDs over the real Workload API socket; none when it is refused. */
async function fetchSvids(agent: AgentProcess) {
  const args = ['fetch', 'x509', '--output', 'json', '--timeout', '5000'];
  const result = await asWorkload(WORKLOAD_UID, agent, ...args);
  if (result.code !== 0) return [];
  return (JSON.parse(result.stdout) as { svids: Array<{ spiffe_id: string; serial: string }> }).svids;
}

it('an agent restarted while the server is down serves the same SVIDs until the server is back', async () => {
  const serverDir = makeTempDir('sigil-e2e-offline-server-');
  const agentDir = makeSharedDir('sigil-e2e-offline-agent-');
  cleanups.push(serverDir.cleanup, agentDir.cleanup);
  const port = await freePort();
  let server: ServerProcess = await startServerProcess({ dataDir: serverDir.dir, agentApiPort: port });
  cleanups.push(() => server.stop());
  const bundlePath = await writeBundlePem(server, path.join(agentDir.dir, 'bundle.pem'));
  const token = await joinToken(server);
  const entryIds: Record<string, string> = {};
  for (const name of ['web', 'web-extra']) entryIds[name] = await uidEntry(server, name, WORKLOAD_UID);
  let agent = await startAgentProcess(server, {
    root: agentDir.dir,
    joinToken: token,
    trustBundlePath: bundlePath,
  });
  cleanups.push(() => agent.stop());
  const cacheFile = path.join(agent.dataDir, CACHE_FILE);
  const readCache = () => JSON.parse(readFileSync(cacheFile, 'utf8')) as CacheFile;
  await waitFor(
    async () => (await fetchSvids(agent)).length === 2,
    20_000,
    () => 'two SVIDs never served',
  );
  const before = await fetchSvids(agent);
  await waitFor(
    () => {
      try {
        return readCache().svids.length === 2;
      } catch {
        return false;
      }
    },
    10_000,
    () => `the cache file never held both SVIDs:\n${agent.logs()}`,
  );
  expect(statSync(cacheFile).mode & 0o777).toBe(0o600);
  const keys = readCache().svids.map((s) => s.key);

  // The server goes away; the agent is killed without a chance to flush, then started again.
  expect(await server.stop()).toBe(0);
  agent.child.kill('SIGKILL');
  await new Promise((resolve) => agent.child.once('exit', resolve));
  const firstLogs = agent.logs();
  agent = await startAgentProcess(server, { root: agentDir.dir, trustBundlePath: bundlePath });
  expect(agent.logs()).toMatch(
    /"entries":2,"svids":2,"expired":0,"dropped":0[^\n]*"msg":"Workload SVID cache loaded/,
  );
  await agent.waitForLog(/Server sync failed; serving cached SVIDs and retrying/);
  expect(await fetchSvids(agent)).toEqual(before);
  // Serving from disk: degraded, not "nothing to serve".
  const health = await runCommand(process.execPath, [
    AGENT_BIN,
    'healthcheck',
    '--admin-socket',
    agent.adminSocket,
  ]);
  expect(health.code, health.stderr).toBe(0);
  expect(health.stdout).toContain('Agent is healthy (degraded)');
  expect(health.stdout).toContain('2 entries, revision');
  expect(before.map((s) => s.spiffe_id).sort()).toEqual([`${TD}/web`, `${TD}/web-extra`]);

  // A clean stop while still offline; then a corrupted file: ignored with a warning, no crash.
  await agent.stop();
  expect(readCache().svids).toHaveLength(2);
  const secondLogs = agent.logs();
  writeFileSync(cacheFile, readFileSync(cacheFile, 'utf8').slice(0, 2000));
  agent = await startAgentProcess(server, { root: agentDir.dir, trustBundlePath: bundlePath });
  expect(agent.logs()).toContain('"msg":"Workload SVID cache ignored; starting without it"');
  expect(agent.logs()).toContain(`"file":"${cacheFile}"`);
  for (const logs of [firstLogs, secondLogs, agent.logs()]) {
    for (const key of keys) expect(logs).not.toContain(key.slice(0, 32));
    expect(logs).not.toContain('PRIVATE KEY');
  }

  // The server returns: the sync replaces the cache, and a deleted entry leaves the file too.
  server = await startServerProcess({ dataDir: serverDir.dir, agentApiPort: port });
  await waitFor(
    async () => (await fetchSvids(agent)).length === 2,
    40_000,
    () => `not served again after the server came back:\n${agent.logs()}`,
  );
  const deleted = await server.cli('entry', 'delete', '--id', entryIds['web-extra']!);
  expect(deleted.code, deleted.stderr).toBe(0);
  await waitFor(
    () => {
      try {
        const cache = readCache();
        return cache.entries.length === 1 && cache.svids.length === 1;
      } catch {
        return false;
      }
    },
    20_000,
    () => `the deleted entry stayed in the cache file:\n${readFileSync(cacheFile, 'utf8').slice(0, 500)}`,
  );
  expect(readCache().entries[0]!.spiffeId).toBe(`${TD}/web`);
  expect((await fetchSvids(agent)).map((s) => s.spiffe_id)).toEqual([`${TD}/web`]);
}, 120_000);
