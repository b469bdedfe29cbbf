// Handler decisions that need a controlled caller: attestation failures and the PID-reuse re-check.
// The grpc server here binds the handlers directly (no peer-credential listener), so `callerOf`
// is whatever the test says the kernel reported.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerCred } from '../../attestors/workload/types.js';
import { WorkloadApiClient, workloadServiceDefinition } from '../../sdk/index.js';
import { makeSelector } from '../../spiffe/selector.js';
import { FakeIdentityFeed, makeTestTrustDomain } from './fixtures.test-support.js';
import { type CallerProcess, createWorkloadApiHandlers } from './handler.js';
import type { CallerAttestor } from './identity-feed.js';

const CRED: PeerCred = { pid: 4242, uid: 1000, gid: 1000 };
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function serve(options: { attestor: CallerAttestor; caller: CallerProcess | undefined }) {
  const td = await makeTestTrustDomain('example.org', Date.now());
  const feed = new FakeIdentityFeed(new Map([['example.org', td.bundle]]));
  feed.set('unix:uid:1000', { svids: [td.mintX509('/web')], bundle: td.bundle, federatedBundles: new Map() });
  const logs: Array<Record<string, unknown>> = [];
  const record = (fields: object, msg: string) => logs.push({ ...fields, msg });
  const server = new Server();
  server.addService(
    workloadServiceDefinition(),
    createWorkloadApiHandlers({
      feed,
      attestor: options.attestor,
      callerOf: () => options.caller,
      logger: { debug: () => {}, info: record, warn: record, error: record },
    }),
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'sigil-handler-'));
  const socketPath = path.join(dir, 'h.sock');
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  const client = new WorkloadApiClient({ address: `unix://${socketPath}` });
  cleanups.push(() => {
    client.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });
  return { client, logs, feed };
}

const unixUid = (peer: PeerCred) => [makeSelector('unix', `uid:${peer.uid}`)];

describe('Workload API handler: attestation', () => {
  it('attests with the peer credentials the listener recorded', async () => {
    const seen: PeerCred[] = [];
    const { client } = await serve({
      attestor: {
        attest: async (peer) => {
          seen.push(peer);
          return unixUid(peer);
        },
      },
      caller: { cred: CRED, isSameProcess: () => true },
    });
    const svids = await client.fetchX509Svids();
    expect(svids[0]!.spiffeId.toString()).toBe('spiffe://example.org/web');
    expect(seen).toEqual([CRED]);
  });

  it('answers UNAVAILABLE when the attestor fails, and logs why with pid and uid', async () => {
    const { client, logs } = await serve({
      attestor: {
        attest: async () => {
          throw new Error('cannot read /proc/4242/status');
        },
      },
      caller: { cred: CRED, isSameProcess: () => true },
    });
    await expect(client.fetchX509Svids()).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: expect.stringContaining('workload attestation failed'),
    });
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'Workload API request refused',
        method: 'FetchX509SVID',
        pid: 4242,
        uid: 1000,
        code: 'UNAVAILABLE',
        reason: 'attestor: cannot read /proc/4242/status',
      }),
    );
  });

  it('answers UNAVAILABLE when the caller exited during attestation (its pid may be reused)', async () => {
    let alive = true;
    const { client, logs } = await serve({
      attestor: {
        attest: async (peer) => {
          // The caller dies while we read /proc; another process could now hold its pid.
          alive = false;
          return unixUid(peer);
        },
      },
      caller: { cred: CRED, isSameProcess: () => alive },
    });
    await expect(client.fetchJwtBundles()).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    await expect(client.fetchJwtSvid('db')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    expect(logs.filter((l) => String(l.reason).includes('pid may be reused'))).toHaveLength(2);
  });

  it('answers UNAVAILABLE for a call whose connection is unknown', async () => {
    const { client } = await serve({ attestor: { attest: async (p) => unixUid(p) }, caller: undefined });
    await expect(client.fetchX509Bundles()).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
  });
});
