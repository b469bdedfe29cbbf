// Rotation with nothing dropped: a client making continuous mTLS requests (a new handshake each) to a
// server, both holding SVIDs from the Workload API and reloading them on every update, across many
// workload SVID rotations and one CA rotation, with zero failures. Real TTLs, scaled by
// SIGIL_TEST_TIME_SCALE (default 1: a 60 s CA, 8 s SVIDs; TLS checks validity on the real clock).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, makeSharedDir, startAgentProcess, watchAsWorkload } from '../support/agent-harness.js';
import { asUser, spawnDaemon } from '../support/daemon.js';
import { REPO_ROOT, type ServerProcess, startServerProcess } from '../support/harness.js';
import { joinToken, TD, uidEntry, writeBundlePem } from '../support/registration.js';

const SCALE = Number(process.env.SIGIL_TEST_TIME_SCALE ?? '1');
/** Lifetimes in the server config are whole seconds, so a scaled one is rounded to a second. */
const s = (seconds: number) => `${Math.max(1, Math.round(seconds * SCALE))}s`;
const CLIENT_UID = 65534;
const SERVER_UID = 1;
const SDK = path.join(REPO_ROOT, 'dist', 'src', 'sdk', 'index.js');
const PEER = path.join(REPO_ROOT, 'test', 'fixtures', 'mtls-peer.mjs');

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The mTLS peer fixture (`server …` or `client …`) as `uid`. */
function runAs(uid: number, args: string[]) {
  return spawnDaemon(asUser(uid, [process.execPath, PEER, ...args]), { name: `${args[0]} peer` });
}

describe('rotation under load', () => {
  it('keeps every mTLS request working across SVID and CA rotations', async () => {
    const root = makeSharedDir('sigil-rotation-');
    cleanups.push(root.cleanup);
    const config = path.join(root.dir, 'server.yaml');
    writeFileSync(
      config,
      [
        'trust_domain: example.org',
        // The SVID lifetimes below are far under the default min_svid_ttl (1m).
        'min_svid_ttl: 1s',
        'ca:',
        `  ttl: ${s(60)}`,
        `  publish_lead: ${s(5)}`,
        `default_x509_svid_ttl: ${s(8)}`,
        `default_jwt_svid_ttl: ${s(5)}`,
        'agent_svid_ttl: 30s',
      ].join('\n'),
    );
    const server: ServerProcess = await startServerProcess({
      configFile: config,
      dataDir: path.join(root.dir, 'server'),
    });
    cleanups.push(() => server.stop());
    await uidEntry(server, 'client', CLIENT_UID);
    await uidEntry(server, 'backend', SERVER_UID);
    const agent = await startAgentProcess(server, {
      root: path.join(root.dir, 'agent'),
      joinToken: await joinToken(server),
      trustBundlePath: await writeBundlePem(server, path.join(root.dir, 'bundle.pem')),
    });
    cleanups.push(() => agent.stop());
    const socket = `unix://${agent.socketPath}`;

    const port = await freePort();
    const backend = runAs(SERVER_UID, ['server', SDK, socket, String(port), `${TD}/client`]);
    cleanups.push(() => backend.child.kill('SIGKILL'));
    await backend.waitForOutput('"listening"', 20_000);

    const watch = watchAsWorkload(CLIENT_UID, agent);
    // Long enough to pass the CA's activation mark (5/6 of its TTL after the server started).
    const durationMs = Math.round(62_000 * SCALE);
    const client = runAs(CLIENT_UID, [
      'client',
      SDK,
      socket,
      String(port),
      `${TD}/backend`,
      String(durationMs),
    ]);
    expect(await client.exited).toBe(0);
    const result = JSON.parse(client.output().trim().split('\n').pop()!) as {
      ok: number;
      failed: number;
      errors: string[];
      clientSerials: number;
      clientIssuers: number;
      serverSerials: number;
    };
    backend.child.kill('SIGTERM');
    await backend.exited;
    const backendStats = JSON.parse(backend.output().trim().split('\n').pop()!) as {
      serials: number;
      issuers: number;
    };

    console.log(`rotation: ${JSON.stringify({ ...result, backend: backendStats })}`);
    expect(result.failed, result.errors.join('\n')).toBe(0);
    expect(result.ok).toBeGreaterThan(200);
    // At least 3 workload rotations on each side, and one CA rotation seen in the SVIDs' issuer.
    expect(result.clientSerials).toBeGreaterThanOrEqual(4);
    expect(backendStats.serials).toBeGreaterThanOrEqual(4);
    expect(result.clientIssuers).toBeGreaterThanOrEqual(2);
    expect(server.logs()).toMatch(/"change":"activated [0-9a-f]+"/);
    // `sigil-agent api watch` shows each rotation as it happens.
    await watch.stop();
    const serialsSeen = new Set(watch.updates.flatMap((u) => u.svids.map((svid) => svid.serial)));
    expect(serialsSeen.size).toBeGreaterThanOrEqual(4);
  }, 180_000);
});
