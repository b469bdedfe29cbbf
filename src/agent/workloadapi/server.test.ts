// End to end over a real Unix socket: the Workload API server with a fake IdentityFeed and the REAL
// unix attestor, called by our SDK, by a raw grpc-js client (wire checked with protobufjs, not our
// types), and by processes running as other uids, each of which must see only its own identity.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnixAttestor } from '../../attestors/workload/unix/index.js';
import { WorkloadApiClient, type X509Context, X509Source } from '../../sdk/index.js';
import { ManualClock } from '../../spiffe/clock.js';
import { isSigilError, type SigilError } from '../../spiffe/errors.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import { FakeIdentityFeed, makeTestTrustDomain, type TestTrustDomain } from './fixtures.test-support.js';
import type { WorkloadIdentity } from './identity-feed.js';
import { startWorkloadApiServer, type WorkloadApiServer } from './server.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SDK_DIST = path.join(REPO_ROOT, 'dist/src/sdk/index.js');
const NOBODY = 65534;
const DAEMON = 1;
/** uid 2 (bin) has no identity in the fake feed. */
const BIN = 2;

let dir: string;
let socketPath: string;
let address: string;
let server: WorkloadApiServer;
let td: TestTrustDomain;
let fed: TestTrustDomain;
let feed: FakeIdentityFeed;
const logs: Array<Record<string, unknown>> = [];
const logger = {
  debug: () => {},
  info: () => {},
  warn: (fields: object, msg: string) => logs.push({ ...fields, msg }),
  error: (fields: object, msg: string) => logs.push({ ...fields, msg }),
};

function identity(svidPath: string, options: { hint?: string; federated?: boolean } = {}): WorkloadIdentity {
  return {
    svids: [td.mintX509(svidPath, { hint: options.hint })],
    bundle: td.bundle,
    federatedBundles: options.federated === false ? new Map() : new Map([['fed.example', fed.bundle]]),
  };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-wl-'));
  // Other uids must reach the socket: the directory is the caller's concern, so the test opens it.
  chmodSync(dir, 0o755);
  socketPath = path.join(dir, 'api.sock');
  address = `unix://${socketPath}`;
  const now = Date.now();
  td = await makeTestTrustDomain('example.org', now);
  fed = await makeTestTrustDomain('fed.example', now);
  feed = new FakeIdentityFeed(
    new Map([
      ['example.org', td.bundle],
      ['fed.example', fed.bundle],
    ]),
  );
  feed.set('unix:uid:0', identity('/root-workload', { hint: 'internal' }));
  feed.set(`unix:uid:${NOBODY}`, identity('/nobody'));
  feed.set(`unix:uid:${DAEMON}`, identity('/daemon'));
  const unix = createUnixAttestor({});
  server = await startWorkloadApiServer({
    socketPath,
    feed,
    attestor: { attest: (peer, signal) => unix.attest(peer, signal) },
    logger,
  });
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Workload API server, called through the SDK', () => {
  it('serves the caller its own SVID and bundles, attested from its peer credentials', async () => {
    const client = new WorkloadApiClient({ address });
    try {
      const context = await client.fetchX509Context();
      expect(context.svids.map((s) => s.spiffeId.toString())).toEqual(['spiffe://example.org/root-workload']);
      expect(context.svids[0]!.hint).toBe('internal');
      expect([...context.bundles.keys()].sort()).toEqual(['example.org', 'fed.example']);
      expect(context.bundles.get('example.org')!.x509Authorities).toEqual(td.bundle.x509Authorities);
      const selectors = feed.seenSelectors.at(-1)!;
      expect(selectors).toContain('unix:uid:0');
      expect(selectors).toContain('unix:user:root');
      expect(selectors).toContain('unix:gid:0');
      expect(selectors).toContain(`unix:path:${process.execPath}`);
    } finally {
      client.close();
    }
  });

  it('pushes an update on the open stream when the feed changes, then redacts with PERMISSION_DENIED', async () => {
    const clock = new ManualClock();
    const client = new WorkloadApiClient({ address, clock, random: () => 0 });
    const controller = new AbortController();
    const updates: X509Context[] = [];
    const errors: SigilError[] = [];
    let notify = () => {};
    const watching = client.watchX509Svids(
      (context) => {
        updates.push(context);
        notify();
      },
      controller.signal,
      {
        onError: (err) => {
          errors.push(err);
          notify();
        },
      },
    );
    const until = (done: () => boolean) =>
      new Promise<void>((resolve) => {
        notify = () => done() && resolve();
        notify();
      });
    try {
      await until(() => updates.length === 1);
      feed.set('unix:uid:0', identity('/rotated'));
      await until(() => updates.length === 2);
      expect(updates[1]!.svids[0]!.spiffeId.toString()).toBe('spiffe://example.org/rotated');
      feed.set('unix:uid:0', { svids: [], bundle: td.bundle, federatedBundles: new Map() });
      await until(() => errors.length === 1);
      expect(errors[0]!.code).toBe('ERR_PERMISSION_DENIED');
      expect(errors[0]!.message).toContain('no identity issued');
    } finally {
      controller.abort();
      await watching;
      client.close();
      feed.set('unix:uid:0', identity('/root-workload', { hint: 'internal' }));
    }
  });

  it('keeps an X509Source current across a rotation', async () => {
    const source = await X509Source.create({ address });
    try {
      const before = describeCertificate(source.getSvid().certificates[0]!).serialHex;
      const updated = new Promise<X509Context>((resolve) => source.once('update', resolve));
      feed.set('unix:uid:0', identity('/root-workload', { hint: 'internal' }));
      await updated;
      const after = describeCertificate(source.getSvid().certificates[0]!).serialHex;
      expect(after).not.toBe(before);
      expect(source.getBundleFor('fed.example').x509Authorities).toEqual(fed.bundle.x509Authorities);
      expect(() => source.getBundleFor('other.org')).toThrow(/no bundle for trust domain "other.org"/);
    } finally {
      source.close();
    }
    expect(() => source.getSvid()).toThrow(/closed/);
  });

  it('streams X.509 bundles without sending a duplicate when only the SVID changed', async () => {
    const client = new WorkloadApiClient({ address });
    const controller = new AbortController();
    const received: Array<string[]> = [];
    let notify = () => {};
    const watching = client.watchX509Bundles((bundles) => {
      received.push([...bundles.keys()].sort());
      notify();
    }, controller.signal);
    const until = (n: number) =>
      new Promise<void>((resolve) => {
        notify = () => received.length >= n && resolve();
        notify();
      });
    try {
      await until(1);
      expect(received[0]).toEqual(['example.org', 'fed.example']);
      feed.set('unix:uid:0', identity('/root-workload', { hint: 'internal' }));
      feed.set('unix:uid:0', identity('/root-workload', { hint: 'internal', federated: false }));
      await until(2);
      expect(received).toEqual([['example.org', 'fed.example'], ['example.org']]);
    } finally {
      controller.abort();
      await watching;
      client.close();
      feed.set('unix:uid:0', identity('/root-workload', { hint: 'internal' }));
    }
  });

  it('returns JWT bundles as plain JWK Sets keyed by trust domain ID', async () => {
    const client = new WorkloadApiClient({ address });
    try {
      const bundles = await client.fetchJwtBundles();
      expect(bundles.get('example.org')!.jwtAuthorities.map((a) => a.kid)).toEqual(['kid-example.org']);
      expect(bundles.get('fed.example')!.jwtAuthorities.map((a) => a.kid)).toEqual(['kid-fed.example']);
    } finally {
      client.close();
    }
  });

  it('mints JWT-SVIDs only for the caller and requires an audience', async () => {
    const token = td.mintJwt('/root-workload', ['db'], Date.now());
    feed.setJwt('unix:uid:0', [{ spiffeId: 'spiffe://example.org/root-workload', token, hint: '' }]);
    const client = new WorkloadApiClient({ address });
    try {
      const svid = await client.fetchJwtSvid('db');
      expect(svid.spiffeId.toString()).toBe('spiffe://example.org/root-workload');
      expect(svid.token).toBe(token);
      expect(svid.audience).toEqual(['db']);
      await expect(client.fetchJwtSvid([])).rejects.toMatchObject({
        code: 'ERR_INPUT_INVALID',
        message: expect.stringContaining('audience must be specified'),
      });
      await expect(client.fetchJwtSvid('db', 'spiffe://example.org/nobody')).rejects.toMatchObject({
        code: 'ERR_PERMISSION_DENIED',
        message: expect.stringContaining('no identity issued'),
      });
      await expect(client.fetchJwtSvid('db', 'not-an-id')).rejects.toMatchObject({
        code: 'ERR_INPUT_INVALID',
      });
    } finally {
      client.close();
    }
  });

  it('validates JWT-SVIDs against the known bundles: good, wrong audience, garbage, foreign key', async () => {
    const client = new WorkloadApiClient({ address });
    try {
      const good = td.mintJwt('/svc', ['api'], Date.now());
      const result = await client.validateJwtSvid(good, 'api');
      expect(result.spiffeId.toString()).toBe('spiffe://example.org/svc');
      expect(result.claims.sub).toBe('spiffe://example.org/svc');
      expect(result.claims.aud).toEqual(['api']);
      expect(typeof result.claims.exp).toBe('number');
      await expect(client.validateJwtSvid(good, 'other')).rejects.toMatchObject({
        code: 'ERR_INPUT_INVALID',
      });
      await expect(client.validateJwtSvid('a.b.c', 'api')).rejects.toMatchObject({
        code: 'ERR_INPUT_INVALID',
      });
      await expect(client.validateJwtSvid('', 'api')).rejects.toMatchObject({
        message: expect.stringContaining('svid must be specified'),
      });
      const stranger = await makeTestTrustDomain('example.org', Date.now());
      await expect(
        client.validateJwtSvid(stranger.mintJwt('/svc', ['api'], Date.now()), 'api'),
      ).rejects.toMatchObject({ code: 'ERR_INPUT_INVALID' });
    } finally {
      client.close();
    }
  });
});

// ---- raw grpc-js, wire decoded with protobufjs's Reader --------------------------------------------

function rawClient(): Client {
  return new Client(address, credentials.createInsecure());
}

function headers(...values: string[]): Metadata {
  const metadata = new Metadata();
  for (const v of values) metadata.add('workload.spiffe.io', v);
  return metadata;
}

/** First message of a server stream as raw bytes, or the error status. */
function rawStreamFirst(method: string, metadata: Metadata, request = Buffer.alloc(0)): Promise<Buffer> {
  const client = rawClient();
  return new Promise<Buffer>((resolve, reject) => {
    const call = client.makeServerStreamRequest<Buffer, Buffer>(
      `/SpiffeWorkloadAPI/${method}`,
      (b) => b,
      (b) => b,
      request,
      metadata,
    );
    call.on('data', (b: Buffer) => {
      resolve(b);
      call.cancel();
    });
    call.on('error', (err: ServiceError) => reject(err));
  }).finally(() => client.close());
}

function rawUnary(method: string, metadata: Metadata, request: Buffer): Promise<Buffer> {
  const client = rawClient();
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      `/SpiffeWorkloadAPI/${method}`,
      (b) => b,
      (b) => b,
      request,
      metadata,
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  }).finally(() => client.close());
}

/** Field number → list of raw values (Buffers for length-delimited fields). */
function decodeFields(bytes: Uint8Array): Map<number, Array<Buffer | number>> {
  const reader = protobuf.Reader.create(bytes);
  const out = new Map<number, Array<Buffer | number>>();
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    let value: Buffer | number;
    if (wireType === 2) value = Buffer.from(reader.bytes());
    else if (wireType === 0) value = reader.uint32();
    else throw new Error(`unexpected wire type ${wireType} for field ${field}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

function field(fields: Map<number, Array<Buffer | number>>, n: number): Buffer[] {
  return (fields.get(n) ?? []) as Buffer[];
}

describe('Workload API server on the wire (raw grpc-js + protobufjs)', () => {
  it('encodes X509SVIDResponse with the official field numbers', async () => {
    const bytes = await rawStreamFirst('FetchX509SVID', headers('true'));
    const response = decodeFields(bytes);
    const svids = field(response, 1);
    expect(svids).toHaveLength(1);
    const svid = decodeFields(svids[0]!);
    expect(field(svid, 1)[0]!.toString()).toBe('spiffe://example.org/root-workload');
    const chain = field(svid, 2)[0]!;
    expect(describeCertificate(chain).spiffeId).toBe('spiffe://example.org/root-workload');
    // PKCS#8: SEQUENCE { INTEGER 0, AlgorithmIdentifier, OCTET STRING } - version byte right after the header.
    const key = field(svid, 3)[0]!;
    expect(key[0]).toBe(0x30);
    expect(field(svid, 4)[0]!.equals(Buffer.concat(td.bundle.x509Authorities))).toBe(true);
    expect(field(svid, 5)[0]!.toString()).toBe('internal');
    // federated_bundles (3) is a map: entries with key = 1, value = 2.
    const entries = field(response, 3).map(decodeFields);
    expect(entries.map((e) => field(e, 1)[0]!.toString())).toEqual(['spiffe://fed.example']);
    expect(field(entries[0]!, 2)[0]!.equals(Buffer.concat(fed.bundle.x509Authorities))).toBe(true);
  });

  it('encodes X509BundlesResponse.bundles as field 2 and JWTBundlesResponse.bundles as field 1', async () => {
    const x509 = decodeFields(await rawStreamFirst('FetchX509Bundles', headers('true')));
    expect(x509.has(1)).toBe(false);
    const keys = field(x509, 2).map((e) => field(decodeFields(e), 1)[0]!.toString());
    expect(keys).toEqual(['spiffe://example.org', 'spiffe://fed.example']);
    const jwt = decodeFields(await rawStreamFirst('FetchJWTBundles', headers('true')));
    const jwks = field(jwt, 1).map(decodeFields);
    const doc = JSON.parse(field(jwks[0]!, 2)[0]!.toString()) as {
      keys: Array<{ kid: string; use?: string }>;
    };
    expect(doc.keys.map((k) => k.kid)).toEqual(['kid-example.org']);
    expect(doc.keys[0]!.use).toBeUndefined();
  });

  it('reads JWTSVIDRequest audience = 1, spiffe_id = 2 and ValidateJWTSVIDRequest audience = 1, svid = 2', async () => {
    const token = td.mintJwt('/svc', ['api'], Date.now());
    const writer = protobuf.Writer.create();
    writer.uint32((1 << 3) | 2).string('api');
    writer.uint32((2 << 3) | 2).string(token);
    const response = decodeFields(
      await rawUnary('ValidateJWTSVID', headers('true'), Buffer.from(writer.finish())),
    );
    expect(field(response, 1)[0]!.toString()).toBe('spiffe://example.org/svc');
    // claims (2) is a google.protobuf.Struct: map<string, Value> fields = 1.
    const claimKeys = field(decodeFields(field(response, 2)[0]!), 1).map((e) =>
      field(decodeFields(e), 1)[0]!.toString(),
    );
    expect(claimKeys.sort()).toEqual(['aud', 'exp', 'iat', 'sub']);
    // Value: string_value = 3, list_value = 6 (ListValue.values = 1).
    const claimEntries = field(decodeFields(field(response, 2)[0]!), 1).map(decodeFields);
    const claim = (name: string) =>
      decodeFields(field(claimEntries.find((e) => field(e, 1)[0]!.toString() === name)!, 2)[0]!);
    expect(field(claim('sub'), 3)[0]!.toString()).toBe('spiffe://example.org/svc');
    const audValues = field(decodeFields(field(claim('aud'), 6)[0]!), 1).map(decodeFields);
    expect(audValues.map((v) => field(v, 3)[0]!.toString())).toEqual(['api']);

    feed.setJwt('unix:uid:0', [{ spiffeId: 'spiffe://example.org/root-workload', token, hint: 'h' }]);
    const jwtRequest = protobuf.Writer.create();
    jwtRequest.uint32((1 << 3) | 2).string('api');
    jwtRequest.uint32((2 << 3) | 2).string('spiffe://example.org/root-workload');
    const jwt = decodeFields(
      await rawUnary('FetchJWTSVID', headers('true'), Buffer.from(jwtRequest.finish())),
    );
    const svid = decodeFields(field(jwt, 1)[0]!);
    expect(field(svid, 1)[0]!.toString()).toBe('spiffe://example.org/root-workload');
    expect(field(svid, 2)[0]!.toString()).toBe(token);
    expect(field(svid, 3)[0]!.toString()).toBe('h');
  });

  it.each([
    ['missing', []],
    ['"false"', ['false']],
    ['"TRUE" (case-sensitive)', ['TRUE']],
    ['two values', ['true', 'true']],
  ])('refuses every method when the security header is %s', async (_name, values) => {
    for (const method of [
      'FetchX509SVID',
      'FetchX509Bundles',
      'FetchJWTBundles',
      'FetchWITSVID',
      'FetchWITBundles',
    ]) {
      await expect(rawStreamFirst(method, headers(...values))).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
        details: 'security header missing from request',
      });
    }
    for (const method of ['FetchJWTSVID', 'ValidateJWTSVID']) {
      await expect(rawUnary(method, headers(...values), Buffer.alloc(0))).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
        details: 'security header missing from request',
      });
    }
  });

  it('answers UNIMPLEMENTED for the WIT RPCs', async () => {
    for (const method of ['FetchWITSVID', 'FetchWITBundles']) {
      await expect(rawStreamFirst(method, headers('true'))).rejects.toMatchObject({
        code: status.UNIMPLEMENTED,
      });
    }
  });
});

// ---- other uids ------------------------------------------------------------------------------------

interface ChildReport {
  pid: number;
  x509?: string[];
  jwtBundles?: string[];
  errors: Record<string, { code: string; message: string }>;
}

/** Runs a node process as `uid` that uses the compiled SDK against the server, and reports what it got. */
function runAs(uid: number): Promise<ChildReport> {
  const script = `
    const { WorkloadApiClient } = await import(process.argv[1]);
    const client = new WorkloadApiClient({ address: process.argv[2] });
    const report = { pid: process.pid, errors: {} };
    const attempt = async (name, fn) => {
      try { return await fn(); } catch (err) { report.errors[name] = { code: err.code, message: err.message }; }
    };
    const x509 = await attempt('x509', () => client.fetchX509Svids());
    if (x509) report.x509 = x509.map((s) => s.spiffeId.toString());
    await attempt('x509Bundles', () => client.fetchX509Bundles());
    const jwt = await attempt('jwtBundles', () => client.fetchJwtBundles());
    if (jwt) report.jwtBundles = [...jwt.keys()];
    client.close();
    process.stdout.write(JSON.stringify(report));
  `;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script, SDK_DIST, address],
      { uid, gid: uid === NOBODY ? NOBODY : uid, cwd: '/', timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`child as uid ${uid} failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as ChildReport);
      },
    );
  });
}

describe('Workload API server, called by processes of other uids', () => {
  it('gives uid 65534 and uid 1 each their own identity, and nothing of the other', async () => {
    const [nobody, daemon] = await Promise.all([runAs(NOBODY), runAs(DAEMON)]);
    expect(nobody.x509).toEqual(['spiffe://example.org/nobody']);
    expect(daemon.x509).toEqual(['spiffe://example.org/daemon']);
    expect(nobody.errors).toEqual({});
    expect(daemon.errors).toEqual({});
    const nobodySelectors = feed.seenSelectors.find((s) => s.includes(`unix:uid:${NOBODY}`))!;
    expect(nobodySelectors).toEqual(
      expect.arrayContaining(['unix:user:nobody', `unix:gid:${NOBODY}`, 'unix:group:nogroup']),
    );
    expect(nobodySelectors.some((s) => s.startsWith('unix:uid:1'))).toBe(false);
    const daemonSelectors = feed.seenSelectors.find((s) => s.includes(`unix:uid:${DAEMON}`))!;
    expect(daemonSelectors).toEqual(expect.arrayContaining(['unix:user:daemon', `unix:gid:${DAEMON}`]));
  });

  it('refuses a caller with no identity with PERMISSION_DENIED on every stream, and logs pid and uid', async () => {
    const bin = await runAs(BIN);
    expect(bin.x509).toBeUndefined();
    for (const name of ['x509', 'x509Bundles', 'jwtBundles']) {
      expect(bin.errors[name]).toMatchObject({
        code: 'ERR_PERMISSION_DENIED',
        message: expect.stringContaining('no identity issued'),
      });
    }
    const refusal = logs.find((l) => l.uid === BIN && l.msg === 'Workload API request refused');
    expect(refusal).toMatchObject({ pid: bin.pid, uid: BIN, code: 'PERMISSION_DENIED' });
    expect(JSON.stringify(logs)).not.toMatch(/PRIVATE KEY|eyJ/);
  });
});

describe('SDK error mapping', () => {
  it('reports an unreachable endpoint as ERR_UNAVAILABLE', async () => {
    const client = new WorkloadApiClient({ address: `unix://${path.join(dir, 'nothing.sock')}` });
    try {
      const err = await client.fetchX509Context().catch((e: unknown) => e);
      expect(isSigilError(err, 'ERR_UNAVAILABLE')).toBe(true);
    } finally {
      client.close();
    }
  });
});
