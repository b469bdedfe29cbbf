// Handler decisions that need a controlled caller: attestation failures, the PID-reuse and exec
// re-checks, call tracking for idle connections, and input refused before anything is minted.
// The grpc server here binds the handlers directly (no peer-credential listener), so `callerOf`
// is whatever the test says the kernel reported.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerCred } from '../../attestors/workload/types.js';
import { WorkloadApiClient } from '../../sdk/index.js';
import { SIGIL_ERROR_CODES, SigilError } from '../../spiffe/errors.js';
import { MAX_JWT_AUDIENCE_BYTES, MAX_JWT_AUDIENCES, MAX_JWT_SVID_BYTES } from '../../spiffe/jwt-svid.js';
import { makeSelector } from '../../spiffe/selector.js';
import { WORKLOAD_STATUS_BY_CODE } from './error-status.js';
import { FakeIdentityFeed, makeTestTrustDomain } from './fixtures.test-support.js';
import { type CallerProcess, createWorkloadApiHandlers } from './handler.js';
import type { CallerAttestor } from './identity-feed.js';
import type { PeerChange } from './peer-cred.js';
import { strictWorkloadServiceDefinition } from './request-decoding.js';

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
    strictWorkloadServiceDefinition(),
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
  const raw = new Client(`unix://${socketPath}`, credentials.createInsecure());
  cleanups.push(() => raw.close());
  /** A unary call with hand-made request bytes; resolves with the status. */
  const rawUnary = (method: string, request: Buffer) =>
    new Promise<{ code: status; details: string }>((resolve) => {
      const metadata = new Metadata();
      metadata.set('workload.spiffe.io', 'true');
      raw.makeUnaryRequest<Buffer, Buffer>(
        `/SpiffeWorkloadAPI/${method}`,
        (b) => b,
        (b) => b,
        request,
        metadata,
        (err) =>
          resolve(
            err
              ? { code: (err as ServiceError).code, details: (err as ServiceError).details }
              : { code: status.OK, details: '' },
          ),
      );
    });
  return { client, logs, feed, td, rawUnary };
}

const unixUid = (peer: PeerCred) => [makeSelector('unix', `uid:${peer.uid}`)];
const EXITED: PeerChange = { kind: 'exited', detail: 'process 4242 has exited (its pid may be reused)' };
const steadyCaller = (): CallerProcess => ({ cred: CRED, change: () => undefined, openCall: () => () => {} });

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
      caller: steadyCaller(),
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
      caller: steadyCaller(),
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
      caller: { ...steadyCaller(), change: () => (alive ? undefined : EXITED) },
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

describe('Workload API handler: the caller must still be the process that connected', () => {
  const EXEC: PeerChange = {
    kind: 'exec',
    detail:
      "process 4242 has exec'd /usr/bin/legit (device 1, inode 2) since it connected running /usr/bin/python3 (device 1, inode 3)",
  };

  it("refuses every call with PERMISSION_DENIED once the process has exec'd, before attesting, and logs both executables", async () => {
    let attested = 0;
    const { client, logs } = await serve({
      attestor: {
        attest: async (peer) => {
          attested++;
          return unixUid(peer);
        },
      },
      caller: { ...steadyCaller(), change: () => EXEC },
    });
    await expect(client.fetchX509Svids()).rejects.toMatchObject({
      code: 'ERR_PERMISSION_DENIED',
      message: expect.stringContaining("has exec'd another program since"),
    });
    await expect(client.fetchJwtSvid('db')).rejects.toMatchObject({ code: 'ERR_PERMISSION_DENIED' });
    expect(attested).toBe(0);
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'Workload API request refused',
        pid: 4242,
        code: 'PERMISSION_DENIED',
        reason: EXEC.detail,
      }),
    );
  });

  it("refuses when the process exec'd during attestation", async () => {
    let change: PeerChange | undefined;
    const { client } = await serve({
      attestor: {
        attest: async (peer) => {
          change = EXEC;
          return unixUid(peer);
        },
      },
      caller: { ...steadyCaller(), change: () => change },
    });
    await expect(client.fetchX509Svids()).rejects.toMatchObject({ code: 'ERR_PERMISSION_DENIED' });
  });

  it("re-checks before every update it pushes on a stream, and ends the stream once the caller exec'd", async () => {
    let change: PeerChange | undefined;
    const { client, feed, td } = await serve({
      attestor: { attest: async (p) => unixUid(p) },
      caller: { ...steadyCaller(), change: () => change },
    });
    const controller = new AbortController();
    const updates: string[] = [];
    const errors: unknown[] = [];
    let first = () => {};
    const firstUpdate = new Promise<void>((resolve) => {
      first = resolve;
    });
    const watching = client.watchX509Svids(
      (context) => {
        updates.push(context.svids[0]!.spiffeId.toString());
        first();
      },
      controller.signal,
      { onError: (err) => errors.push(err) },
    );
    await firstUpdate;
    change = EXEC;
    feed.set('unix:uid:1000', {
      svids: [td.mintX509('/rotated')],
      bundle: td.bundle,
      federatedBundles: new Map(),
    });
    await expect.poll(() => errors.length).toBe(1);
    controller.abort();
    await watching;
    expect(updates).toEqual(['spiffe://example.org/web']);
    expect(errors[0]).toMatchObject({ code: 'ERR_PERMISSION_DENIED' });
  });

  it('keeps a call open on the connection for as long as it runs (what the idle timeout counts)', async () => {
    let open = 0;
    const { client } = await serve({
      attestor: { attest: async (p) => unixUid(p) },
      caller: {
        ...steadyCaller(),
        openCall: () => {
          open++;
          return () => open--;
        },
      },
    });
    const controller = new AbortController();
    let seen = () => {};
    const opened = new Promise<void>((resolve) => {
      seen = resolve;
    });
    const watching = client.watchX509Bundles(() => seen(), controller.signal);
    await opened;
    expect(open).toBe(1);
    await client.fetchJwtBundles(); // a stream of its own, cancelled after its first message
    await expect.poll(() => open).toBe(1);
    controller.abort();
    await watching;
    await expect.poll(() => open).toBe(0);
  });
});

describe('Workload API handler: input refused before anything is minted', () => {
  async function serveCounting() {
    const served = await serve({ attestor: { attest: async (p) => unixUid(p) }, caller: steadyCaller() });
    let fetched = 0;
    const fetchJwtSvids = served.feed.fetchJwtSvids.bind(served.feed);
    served.feed.fetchJwtSvids = async (...args) => {
      fetched++;
      return fetchJwtSvids(...args);
    };
    return { ...served, fetched: () => fetched };
  }

  it.each([
    [
      'too many audiences',
      Array.from({ length: MAX_JWT_AUDIENCES + 1 }, (_, i) => `a${i}`),
      `at most ${MAX_JWT_AUDIENCES} audience values`,
    ],
    [
      'an audience over the size limit',
      ['x'.repeat(MAX_JWT_AUDIENCE_BYTES + 1)],
      `at most ${MAX_JWT_AUDIENCE_BYTES} bytes`,
    ],
    ['an empty audience value', ['db', ''], 'non-empty'],
    ['a control character', ['db\u0007'], 'control character'],
  ])(
    'FetchJWTSVID with %s: INVALID_ARGUMENT naming the limit, the feed never asked',
    async (_what, audience, message) => {
      const { client, fetched, logs } = await serveCounting();
      await expect(client.fetchJwtSvid(audience)).rejects.toMatchObject({
        code: 'ERR_INPUT_INVALID',
        message: expect.stringContaining(message),
      });
      expect(fetched()).toBe(0);
      expect(logs).toContainEqual(
        expect.objectContaining({ msg: 'Workload API request refused', code: 'INVALID_ARGUMENT' }),
      );
    },
  );

  it('ValidateJWTSVID bounds the audience and the token', async () => {
    const { client } = await serveCounting();
    await expect(
      client.validateJwtSvid('a.b.c', 'x'.repeat(MAX_JWT_AUDIENCE_BYTES + 1)),
    ).rejects.toMatchObject({
      code: 'ERR_INPUT_INVALID',
      message: expect.stringContaining(`at most ${MAX_JWT_AUDIENCE_BYTES} bytes`),
    });
    await expect(client.validateJwtSvid(`a.${'b'.repeat(MAX_JWT_SVID_BYTES)}.c`, 'db')).rejects.toMatchObject(
      {
        code: 'ERR_INPUT_INVALID',
        message: expect.stringContaining(`more than the ${MAX_JWT_SVID_BYTES} allowed`),
      },
    );
  });

  it('refuses a request that does not parse with INVALID_ARGUMENT naming the problem, not INTERNAL', async () => {
    const { rawUnary, fetched, logs } = await serveCounting();
    // JWTSVIDRequest: audience (1) announced as 10 bytes, 3 present.
    expect(await rawUnary('FetchJWTSVID', Buffer.from([0x0a, 10, 0x61, 0x62, 0x63]))).toEqual({
      code: status.INVALID_ARGUMENT,
      details:
        'malformed JWTSVIDRequest: length 10 at byte 1 runs past the end of the message (3 bytes left)',
    });
    // ValidateJWTSVIDRequest: svid (2) as a varint.
    expect(await rawUnary('ValidateJWTSVID', Buffer.from([0x10, 0x01]))).toEqual({
      code: status.INVALID_ARGUMENT,
      details:
        'malformed ValidateJWTSVIDRequest: field 2 (svid) has wire type varint, expected length-delimited',
    });
    expect(fetched()).toBe(0);
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'Workload API request refused',
        reason: 'malformed-request',
        pid: 4242,
      }),
    );
  });
});

describe('Workload API handler: failures of our own', () => {
  const serveFailing = async (failure: unknown) => {
    const served = await serve({
      attestor: { attest: async (peer) => unixUid(peer) },
      caller: steadyCaller(),
    });
    served.feed.fetchJwtSvids = async () => {
      throw failure;
    };
    return served;
  };
  // JWTSVIDRequest { audience: ['db'] }.
  const JWT_REQUEST = Buffer.from([0x0a, 0x02, 0x64, 0x62]);

  it('answers INTERNAL with no detail, and logs the error itself (stack and cause), not its message', async () => {
    const cause = new Error('EIO: reading /var/lib/sigil-agent/secret-path');
    const { rawUnary, logs } = await serveFailing(new TypeError('cache index is undefined', { cause }));
    expect(await rawUnary('FetchJWTSVID', JWT_REQUEST)).toEqual({
      code: status.INTERNAL,
      details: 'internal error',
    });
    const failed = logs.find((l) => l.msg === 'Workload API request failed');
    expect(failed).toMatchObject({ method: 'FetchJWTSVID', pid: 4242 });
    const err = failed?.err as Error;
    expect(err).toBeInstanceOf(TypeError);
    expect(err.stack).toMatch(/\n\s+at /);
    expect(err.cause).toBe(cause);
  });

  it('places every SigilError code by its table: internal codes hide their message', async () => {
    for (const code of SIGIL_ERROR_CODES) {
      const { rawUnary } = await serveFailing(new SigilError(code, 'detail of the failure'));
      const answer = await rawUnary('FetchJWTSVID', JWT_REQUEST);
      expect(answer.code, code).toBe(WORKLOAD_STATUS_BY_CODE[code]);
      expect(answer.details, code).toBe(
        answer.code === status.INTERNAL ? 'internal error' : 'detail of the failure',
      );
    }
  });
});
