// Attacks on the agent's Workload API (issue 9), run as an attacker would: a real sigil-server and
// real sigil-agent processes, real Unix sockets, real processes that fork, exec, flood and send
// malformed frames. Each attack once succeeded against the agent; each test says what it was.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJwtSvidRequest } from '../../src/sdk/workload-codec.js';
import {
  AGENT_BIN,
  type AgentProcess,
  asWorkload,
  makeSharedDir,
  startAgentProcess,
  waitFor,
} from '../support/agent-harness.js';
import {
  makeTempDir,
  REPO_ROOT,
  runCommand,
  type ServerProcess,
  startServerProcess,
} from '../support/harness.js';
import { RawH2Connection, REFUSED_STREAM } from '../support/raw-h2.js';
import { NOBODY } from '../support/socket-lab.js';
import { framed, grpcCall, holdIdleConnections, linesOf, rssMib } from '../support/workload-attack.js';

const TD = 'spiffe://example.org';
const DAEMON = 1;
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');
/** The limited agent's settings; its descriptor limit makes the total cap (1024 - 256) / 2 = 384. */
const NOFILE = 1024;
const PER_UID = 200;
const MAX_STREAMS = 8;
/** Long enough that the flood is still there when the legitimate caller (a fresh CLI process) connects. */
const IDLE_TIMEOUT_S = 10;

let server: ServerProcess;
let serverDir: { dir: string; cleanup(): void };
let work: { dir: string; cleanup(): void };
/** Serves only an entry for the legitimate binary's path. */
let pathAgent: AgentProcess;
/** Serves uid 0; started under NOFILE descriptors with small Workload API limits. */
let limitedAgent: AgentProcess;
/** A hard link to node under another name: the binary a `unix:path` entry names. */
let legit: string;
const children: ChildProcess[] = [];

/** A framed FetchJWTSVID request for `audience`, encoded as the SDK sends it. */
function jwtSvidRequest(...audience: string[]): Buffer {
  return framed(encodeJwtSvidRequest({ audience, spiffe_id: '' }));
}

async function cli(...args: string[]): Promise<string> {
  const res = await server.cli(...args, '--output', 'json');
  expect(res.code, res.stderr + res.stdout).toBe(0);
  return res.stdout;
}

async function startAgent(name: string, options: { nofile?: number; config?: string } = {}) {
  const token = JSON.parse(await cli('token', 'generate', '--spiffe-id', `${TD}/${name}`)).token as string;
  const root = path.join(work.dir, name);
  const configFile = path.join(work.dir, `${name}.yaml`);
  writeFileSync(configFile, options.config ?? '');
  return startAgentProcess(server, {
    root,
    joinToken: token,
    trustBundlePath: path.join(work.dir, 'bundle.pem'),
    nofile: options.nofile,
    extraArgs: ['--config', configFile],
  });
}

beforeAll(async () => {
  serverDir = makeTempDir('sigil-sec-server-');
  work = makeSharedDir('sigil-sec-');
  server = await startServerProcess({ dataDir: serverDir.dir });
  writeFileSync(
    path.join(work.dir, 'bundle.pem'),
    (await server.cli('bundle', 'show', '--format', 'pem')).stdout,
  );
  legit = path.join(work.dir, 'legit-workload');
  try {
    linkSync(realpathSync(process.execPath), legit);
  } catch {
    // Another filesystem (EXDEV): a copy names a different file just as well.
    copyFileSync(realpathSync(process.execPath), legit);
    chmodSync(legit, 0o755);
  }
  await cli(
    'entry',
    'create',
    '--spiffe-id',
    `${TD}/legit`,
    '--parent-id',
    `${TD}/node-path`,
    '--selector',
    `unix:path:${legit}`,
  );
  await cli(
    'entry',
    'create',
    '--spiffe-id',
    `${TD}/root`,
    '--parent-id',
    `${TD}/node-limited`,
    '--selector',
    'unix:uid:0',
  );
  [pathAgent, limitedAgent] = await Promise.all([
    startAgent('node-path'),
    startAgent('node-limited', {
      nofile: NOFILE,
      config: [
        'workload_api:',
        `  max_connections_per_uid: ${PER_UID}`,
        `  max_streams_per_connection: ${MAX_STREAMS}`,
        `  idle_timeout: ${IDLE_TIMEOUT_S}s`,
      ].join('\n'),
    }),
  ]);
}, 60_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([pathAgent?.stop(), limitedAgent?.stop()]);
  await server?.stop();
  work?.cleanup();
  serverDir?.cleanup();
});

describe("unix:path spoofing: connect, fork, exec the entry's binary, call from the child (item 3)", () => {
  it('refuses the child on the inherited connection, and still serves the binary when it connects itself', async () => {
    const fetchAsLegit = () =>
      runCommand(legit, [
        AGENT_BIN,
        'api',
        'fetch',
        'x509',
        '--output',
        'json',
        '--timeout',
        '5000',
        '--socket-path',
        pathAgent.socketPath,
      ]);
    // The entry reaches the agent by sync: wait until the legitimate binary is served.
    await waitFor(
      async () => (await fetchAsLegit()).code === 0,
      20_000,
      () => `legit never served:\n${pathAgent.logs()}`,
    );
    const served = JSON.parse((await fetchAsLegit()).stdout) as { svids: Array<{ spiffe_id: string }> };
    expect(served.svids.map((s) => s.spiffe_id)).toEqual([`${TD}/legit`]);

    const attacker = spawn(
      'python3',
      [
        path.join(FIXTURES, 'fork-exec-workload.py'),
        pathAgent.socketPath,
        legit,
        process.execPath,
        path.join(FIXTURES, 'inherited-socket-call.mjs'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(attacker);
    const lines = linesOf(attacker);
    await waitFor(
      () => lines.length > 0,
      20_000,
      () => `the attack reported nothing:\n${pathAgent.logs()}`,
    );
    const report = JSON.parse(lines[0]!) as {
      before: { status: number; message: string; messages: number };
      after: { status: number; message: string; messages: number };
      parentExe: string;
    };
    // Before the exec the connecting process is python: no entry names it.
    expect(report.before).toMatchObject({ status: 7, message: 'no identity issued', messages: 0 });
    // The parent now runs the legitimate binary, and still the child gets nothing.
    expect(report.parentExe).toBe(legit);
    expect(report.after).toEqual({
      status: 7,
      message:
        "the process that opened this connection has exec'd another program since; connections cannot be handed on",
      messages: 0,
    });
    expect(pathAgent.logs()).toMatch(
      new RegExp(
        `"reason":"process ${attacker.pid} has exec'd ${legit} \\(device [^"]*since it connected running [^"]*python`,
      ),
    );
    // And the legitimate binary is still served.
    expect((await fetchAsLegit()).code).toBe(0);
  });
});

describe('JWT-SVID audience flood (item 6)', () => {
  it('refuses oversized and too many audiences up front, caches valid ones within its bounds, and the agent stays small', async () => {
    const socket = limitedAgent.socketPath;
    await waitFor(
      async () => (await asWorkload(0, limitedAgent, 'fetch', 'jwt', '--audience', 'warm-up')).code === 0,
      20_000,
      () => `uid 0 never served:\n${limitedAgent.logs()}`,
    );
    const rssBefore = rssMib(limitedAgent.child.pid!);
    // The attack: distinct 2.5 MB audiences. grpc-js refuses each from its length prefix.
    for (let i = 0; i < 100; i++) {
      const audience = String.fromCharCode(97 + (i % 26)).repeat(2_500_000);
      const outcome = await grpcCall(socket, 'FetchJWTSVID', jwtSvidRequest(audience));
      expect(outcome).toMatchObject({ status: 8, dataBytes: 0 }); // RESOURCE_EXHAUSTED
      expect(outcome.message).toMatch(/larger than max \(\d+ vs 131072\)/);
    }
    // Small enough for the transport, too large for an audience: INVALID_ARGUMENT naming the limit.
    const large = await grpcCall(socket, 'FetchJWTSVID', jwtSvidRequest('b'.repeat(2048)));
    expect(large).toMatchObject({ status: 3, dataBytes: 0 });
    expect(large.message).toContain('an audience value may be at most 1024 bytes (got 2048');
    const many = Array.from({ length: 17 }, (_, i) => `aud-${i}`);
    expect(await grpcCall(socket, 'FetchJWTSVID', jwtSvidRequest(...many))).toMatchObject({
      status: 3,
      message: 'audience: at most 16 audience values are allowed (got 17)',
    });
    // Then the largest valid audiences, all distinct: minted, and cached only within the byte bound.
    for (let i = 0; i < 300; i++) {
      const audiences = Array.from({ length: 16 }, (_, j) => `${i}-${j}-`.padEnd(1024, 'z'));
      const minted = await grpcCall(socket, 'FetchJWTSVID', jwtSvidRequest(...audiences));
      expect(minted.status, minted.message).toBe(0);
      expect(minted.dataBytes).toBeGreaterThan(0);
    }
    // The audiences alone were 250 MB, the valid tokens and keys 12 MB; what remains is GC slack.
    const grown = rssMib(limitedAgent.child.pid!) - rssBefore;
    expect(grown, `agent RSS grew by ${grown.toFixed(1)} MiB`).toBeLessThan(100);
    expect(limitedAgent.logs()).toContain('"code":"INVALID_ARGUMENT"');
  }, 120_000);
});

describe('malformed requests on the wire (item 9)', () => {
  it('answers INVALID_ARGUMENT naming the problem to malformed protobuf in raw gRPC frames, and mints nothing', async () => {
    const socket = limitedAgent.socketPath;
    const cases: Array<[Buffer, string]> = [
      [Buffer.from([0x0a, 0x7f, 0x61]), 'malformed JWTSVIDRequest: length 127 at byte 1 runs past the end'],
      [Buffer.from([0x08, 0x01]), 'malformed JWTSVIDRequest: field 1 (audience) has wire type varint'],
      [
        Buffer.from([0x0a, 0x02, 0xc3, 0x28]),
        'malformed JWTSVIDRequest: string at byte 2 is not valid UTF-8',
      ],
      [
        Buffer.concat([encodeJwtSvidRequest({ audience: ['db'], spiffe_id: '' }), Buffer.from([0x0a])]),
        'malformed JWTSVIDRequest: truncated varint',
      ],
    ];
    for (const [body, message] of cases) {
      const outcome = await grpcCall(socket, 'FetchJWTSVID', framed(body));
      expect(outcome).toMatchObject({ status: 3, dataBytes: 0 });
      expect(outcome.message).toContain(message);
    }
    const validate = await grpcCall(socket, 'ValidateJWTSVID', framed(Buffer.from([0x12, 0x01, 0xff])));
    expect(validate).toMatchObject({ status: 3, message: expect.stringContaining('not valid UTF-8') });
    // A gRPC frame cut short (prefix says 100 bytes, 3 sent): refused, never answered with a JWT.
    const cut = Buffer.concat([Buffer.from([0, 0, 0, 0, 100]), Buffer.from([0x0a, 1, 0x61])]);
    const outcome = await grpcCall(socket, 'FetchJWTSVID', cut);
    expect(outcome.dataBytes).toBe(0);
    expect(outcome.status, outcome.message).toBeGreaterThan(0);
  });
});

describe(`connection flood under a ${NOFILE}-descriptor limit (item 8a)`, () => {
  it('keeps serving a legitimate caller through 600 idle connections from two uids, closes them when idle, and logs why', async () => {
    expect(limitedAgent.logs()).toMatch(
      /"maxConnections":384,"descriptorBound":384,"maxConnectionsPerUid":200/,
    );
    // One uid past its cap (it makes room from its own idle connections), then another up to the total.
    const nobody = holdIdleConnections(NOBODY, limitedAgent.socketPath, 300);
    children.push(nobody.child);
    await waitFor(
      () => nobody.opened() === 300,
      30_000,
      () => `uid ${NOBODY} never connected`,
    );
    const daemon = holdIdleConnections(DAEMON, limitedAgent.socketPath, 300);
    children.push(daemon.child);
    await waitFor(
      () => daemon.opened() === 300,
      30_000,
      () => `uid ${DAEMON} never connected`,
    );
    // uid 0 holds nothing: it takes an idle connection from the uid holding the most.
    const fetched = await asWorkload(
      0,
      limitedAgent,
      'fetch',
      'x509',
      '--output',
      'json',
      '--timeout',
      '5000',
    );
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(JSON.parse(fetched.stdout).svids[0].spiffe_id).toBe(`${TD}/root`);
    const logs = limitedAgent.logs();
    expect(logs).toContain(
      `"reason":"uid ${NOBODY} is at its cap of ${PER_UID} connections; its longest-idle one makes room"`,
    );
    expect(logs).toMatch(
      /"reason":"all 384 connections are taken; uid \d+ holds \d+ and uid 0 0","forPid":\d+,"forUid":0/,
    );
    // The idle timeout then closes every flood connection.
    await waitFor(
      () => nobody.closed() === 300 && daemon.closed() === 300,
      (IDLE_TIMEOUT_S + 20) * 1000,
      () =>
        `still open: ${300 - nobody.closed()} of uid ${NOBODY}, ${300 - daemon.closed()} of uid ${DAEMON}`,
    );
    expect(limitedAgent.logs()).toContain(`"reason":"idle timeout: no call open for ${IDLE_TIMEOUT_S}s"`);
    // Never the misleading cause the issue saw.
    expect(limitedAgent.logs()).not.toContain('exited before it could be attested');
    expect(limitedAgent.logs()).not.toContain('accept failed');
  }, 90_000);

  it(`refuses streams beyond ${MAX_STREAMS} on one connection with REFUSED_STREAM`, async () => {
    const conn = await RawH2Connection.open(limitedAgent.socketPath);
    try {
      const ids = Array.from({ length: MAX_STREAMS + 4 }, (_, i) => 2 * i + 1);
      for (const id of ids) conn.call(id, '/SpiffeWorkloadAPI/FetchX509Bundles', Buffer.alloc(0));
      const served = () => ids.filter((id) => conn.streams.get(id)!.dataBytes > 0);
      const refused = () => ids.filter((id) => conn.streams.get(id)!.rstCode === REFUSED_STREAM);
      await waitFor(
        () => served().length + refused().length === ids.length,
        20_000,
        () => `streams: ${JSON.stringify([...conn.streams])}`,
      );
      expect(conn.maxConcurrentStreams).toBe(MAX_STREAMS);
      expect(served()).toEqual(ids.slice(0, MAX_STREAMS));
      expect(refused()).toEqual(ids.slice(MAX_STREAMS));
    } finally {
      conn.close();
    }
  });
});
