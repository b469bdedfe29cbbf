import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  asWorkload,
  freePort,
  makeSharedDir,
  startAgentProcess,
  waitFor,
  watchAsWorkload,
} from '../support/agent-harness.js';
import { makeTempDir, type ServerProcess, startServerProcess } from '../support/harness.js';
import { joinToken, uidEntry, writeBundlePem } from '../support/registration.js';

const TD = 'spiffe://example.org';
const NOBODY = 65534;
const DAEMON = 1;

let server: ServerProcess;
let agent: AgentProcess;
let serverDir: { dir: string; cleanup(): void };
let agentDir: { dir: string; cleanup(): void };
let port: number;
let bundlePath: string;
let agentId: string;

async function fetchIds(uid: number): Promise<{ code: number; ids: string[]; stderr: string }> {
  const result = await asWorkload(uid, agent, 'fetch', 'x509', '--output', 'json', '--timeout', '5000');
  // With --output json a failure is the JSON error line on stdout.
  if (result.code !== 0) return { code: result.code, ids: [], stderr: result.stdout + result.stderr };
  const body = JSON.parse(result.stdout) as { svids: Array<{ spiffe_id: string }> };
  return { code: 0, ids: body.svids.map((s) => s.spiffe_id).sort(), stderr: result.stderr };
}

/** An entry `<td><spiffePath>` for `uid` under node1; its ID. */
const createEntry = (spiffePath: string, uid: number) => uidEntry(server, spiffePath.slice(1), uid);

beforeAll(async () => {
  serverDir = makeTempDir('sigil-e2e-server-');
  agentDir = makeSharedDir();
  port = await freePort();
  server = await startServerProcess({ dataDir: serverDir.dir, agentApiPort: port });
  bundlePath = await writeBundlePem(server, path.join(agentDir.dir, 'bundle.pem'));
  const token = await joinToken(server);
  await createEntry('/web', NOBODY);
  await createEntry('/db', DAEMON);
  agent = await startAgentProcess(server, {
    root: agentDir.dir,
    joinToken: token,
    trustBundlePath: bundlePath,
  });
  agentId = /"agentId":"([^"]+)"[^\n]*"msg":"Node attested"/.exec(agent.logs())![1]!;
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await server?.stop();
  agentDir?.cleanup();
  serverDir?.cleanup();
});

describe('sigil-agent with the Workload API', () => {
  it("gives workloads under different uids their own identities and never each other's", async () => {
    const web = await fetchIds(NOBODY);
    const db = await fetchIds(DAEMON);
    expect(web).toMatchObject({ code: 0, ids: [`${TD}/web`] });
    expect(db).toMatchObject({ code: 0, ids: [`${TD}/db`] });
    // uid 0 matches no entry: PermissionDenied, as SPIRE answers.
    const none = await fetchIds(0);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no identity issued|PERMISSION_DENIED/);
  });

  it('shows the operator why a process has (or lacks) an identity', async () => {
    const explain = await server.cli('entry', 'explain', '--agent', agentId, '--output', 'json');
    const body = JSON.parse(explain.stdout);
    expect(body.aliases).toEqual([`${TD}/node1`]);
    expect(body.entries.map((e: { entry: { spiffe_id: string } }) => e.entry.spiffe_id).sort()).toEqual([
      `${TD}/db`,
      `${TD}/web`,
    ]);
  });

  it('stops giving a workload an identity whose entry was deleted, and pushes the change to its stream', async () => {
    const id = await createEntry('/db2', DAEMON);
    await waitFor(
      async () => (await fetchIds(DAEMON)).ids.includes(`${TD}/db2`),
      15_000,
      () => 'db2 never arrived',
    );
    const watch = watchAsWorkload(DAEMON, agent);
    try {
      await watch.waitFor((u) => u.svids.some((s) => s.spiffe_id === `${TD}/db2`));
      expect((await server.cli('entry', 'delete', '--id', id)).code).toBe(0);
      await watch.waitFor((u) => u.svids.length === 1 && u.svids[0]!.spiffe_id === `${TD}/db`);
      expect((await fetchIds(DAEMON)).ids).toEqual([`${TD}/db`]);
    } finally {
      await watch.stop();
    }
  });

  it('restarts without attesting again', async () => {
    await agent.stop();
    agent = await startAgentProcess(server, { root: agentDir.dir, trustBundlePath: bundlePath });
    expect(agent.logs()).toContain('Reusing the saved agent SVID');
    expect(agent.logs()).not.toContain('"msg":"Node attested"');
    await waitFor(
      async () => (await fetchIds(NOBODY)).ids.includes(`${TD}/web`),
      15_000,
      () => 'web not served after restart',
    );
  });

  it('keeps serving while the server is down and picks up changes once it is back', async () => {
    const watch = watchAsWorkload(NOBODY, agent);
    try {
      await watch.waitFor((u) => u.svids.some((s) => s.spiffe_id === `${TD}/web`));
      expect(await server.stop()).toBe(0);
      await agent.waitForLog(/Server sync failed; serving cached SVIDs and retrying/);
      expect((await fetchIds(NOBODY)).ids).toEqual([`${TD}/web`]);

      server = await startServerProcess({ dataDir: serverDir.dir, agentApiPort: port });
      await createEntry('/web-v2', NOBODY);
      await watch.waitFor((u) => u.svids.some((s) => s.spiffe_id === `${TD}/web-v2`), 40_000);
      expect((await fetchIds(NOBODY)).ids).toEqual([`${TD}/web`, `${TD}/web-v2`]);
    } finally {
      await watch.stop();
    }
  }, 90_000);

  it('refuses an evicted agent', async () => {
    const evict = await server.cli('agent', 'evict', '--spiffe-id', agentId);
    expect(evict.code, evict.stderr).toBe(0);
    await agent.waitForLog(/cannot attest again; serving cached SVIDs/, 30_000);
    expect(server.logs()).toMatch(/is not attested \(evicted\?\)|was evicted or banned/);
    // Nothing new reaches the evicted agent.
    await createEntry('/after-evict', NOBODY);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect((await fetchIds(NOBODY)).ids).not.toContain(`${TD}/after-evict`);
  }, 60_000);
});
