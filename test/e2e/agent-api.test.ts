// The agent API end to end: a real sigil-server process (real TLS, real SQLite), driven by the agent's
// own client code (ServerConnection + attestNode) and by real sigil-agent processes. Certificates for
// x509pop are made by openssl and Kubernetes tokens are signed here, so the server's verifiers are
// checked against independent producers.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSvidKeyRequest } from '../../src/agent/manager/csr.js';
import { attestNode } from '../../src/agent/server-client/attest.js';
import type { ServerConnection } from '../../src/agent/server-client/connection.js';
import { createNodeAttestorAgent } from '../../src/attestors/node/index.js';
import type { NodeAttestorAgent } from '../../src/attestors/node/types.js';
import { decodeChallenge, signChallenge } from '../../src/attestors/node/x509pop/protocol.js';
import { parsePrivateKey } from '../../src/spiffe/keys.js';
import { decodePemBlocks, encodePem } from '../../src/spiffe/pem.js';
import { describeCertificate } from '../../src/spiffe/x509-svid.js';
import {
  type Attested,
  attestWith,
  attestWithToken,
  generateToken,
  newConnection,
  rejectionOf,
  serverLog,
  TRUST_DOMAIN,
} from '../support/agent-api-client.js';
import {
  type AgentProcess,
  asWorkload,
  makeSharedDir,
  startAgentProcess,
  waitFor,
} from '../support/agent-harness.js';
import { makeTempDir, runCommand, type ServerProcess, startServerProcess } from '../support/harness.js';

const TD = 'spiffe://example.org';
const NOBODY = 65534;
const POD_UID = '1b7c0e2a-6f3d-4b8e-9a11-2c3d4e5f6a7b';

// openssl extension sections for the node PKI (same shapes the x509pop unit tests use).
const EXTENSIONS = `
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectAltName = DNS:node-x.example.org
`;

let work: { dir: string; cleanup(): void };
const file = (name: string) => path.join(work.dir, name);

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, {
    cwd: work.dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** `<name>.key` (P-256) and `<name>.pem` for CN `cn`, signed by `issuer` (self-signed when null). */
function makeCert(name: string, cn: string, section: 'ca' | 'leaf', issuer: string | null): void {
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  openssl('req', '-new', '-key', `${name}.key`, '-subj', `/O=Sigil E2E/CN=${cn}`, '-out', `${name}.csr`);
  const signer =
    issuer === null ? ['-signkey', `${name}.key`] : ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`];
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    ...signer,
    '-days',
    '30',
    '-set_serial',
    `0x${name.length}${cn.length}77`,
    '-extfile',
    'ext.cnf',
    '-extensions',
    section,
    '-sha256',
    '-out',
    `${name}.pem`,
  );
}

function sha1Fingerprint(name: string): string {
  const out = openssl('x509', '-in', `${name}.pem`, '-noout', '-fingerprint', '-sha1');
  return out.trim().split('=')[1]!.replaceAll(':', '').toLowerCase();
}

function x509popAgent(name: string): NodeAttestorAgent {
  return createNodeAttestorAgent('x509pop', {
    certificate_path: file(`${name}.pem`),
    private_key_path: file(`${name}.key`),
  });
}

// ---- Kubernetes service account tokens, signed here with a key whose public half the server trusts.
const saKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const strangerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function saToken(overrides: Record<string, unknown> = {}, key: KeyObject = saKey.privateKey): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: 'https://kubernetes.default.svc.cluster.local',
    sub: 'system:serviceaccount:sigil:agent',
    aud: ['sigil-server'],
    exp: now + 600,
    iat: now - 5,
    nbf: now - 5,
    'kubernetes.io': {
      namespace: 'sigil',
      serviceaccount: { name: 'agent', uid: '9e8d7c6b-0000-1111-2222-333344445555' },
      pod: { name: 'sigil-agent-x7k2p', uid: POD_UID },
      node: { name: 'node-1', uid: 'aa00bb11-cc22-dd33-ee44-ff5566778899' },
    },
    ...overrides,
  };
  const input = `${b64url({ alg: 'ES256', kid: 'k1' })}.${b64url(claims)}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** The agent half of k8s_sat, reading a token file written here. */
function k8sAgent(token: string, name: string): NodeAttestorAgent {
  writeFileSync(file(name), token);
  return createNodeAttestorAgent('k8s_sat', { cluster: 'prod', token_path: file(name) });
}

// ---- The agent's client, as sigil-agent uses it (test/support/agent-api-client.ts).
const openConnections: ServerConnection[] = [];

/** Keeps `attested`'s connection open until all tests are done. */
function kept(attested: Attested): Attested {
  openConnections.push(attested.connection);
  return attested;
}

/** The gRPC error behind a refused attestation (attestNode wraps it in a SigilError). */
async function refusedAttestation(
  server: ServerProcess,
  bundlePem: string,
  attestor: NodeAttestorAgent,
): Promise<ServiceError> {
  const connection = newConnection(server.agentApiAddress, bundlePem);
  try {
    const err = await attestNode(connection, attestor, TRUST_DOMAIN, false).then(
      () => null,
      (e: unknown) => e as Error & { cause?: ServiceError },
    );
    expect(err, 'attestation was accepted').not.toBeNull();
    expect(err!.cause, String(err)).toBeDefined();
    return err!.cause!;
  } finally {
    connection.close();
  }
}

/** Runs one SyncEntries stream until its first message or error. */
function firstSyncEvent(connection: ServerConnection): Promise<{ data?: unknown; error?: ServiceError }> {
  return new Promise((resolve) => {
    const stream = connection.syncEntries({ sinceRevision: 0 });
    stream.once('data', (data) => {
      stream.cancel();
      resolve({ data });
    });
    stream.once('error', (error: ServiceError) => resolve({ error }));
  });
}

interface WireAgent {
  spiffe_id: string;
  attestation_type: string;
  serial: string;
  banned: boolean;
  can_reattest: boolean;
  selectors: Array<{ type: string; value: string }>;
}

async function listAgents(server: ServerProcess): Promise<WireAgent[]> {
  const res = await server.cli('agent', 'list', '--output', 'json');
  expect(res.code, res.stderr).toBe(0);
  return (JSON.parse(res.stdout) as { agents: WireAgent[] }).agents;
}

async function showAgent(server: ServerProcess, id: string): Promise<WireAgent | null> {
  const res = await server.cli('agent', 'show', '--spiffe-id', id, '--output', 'json');
  if (res.code === 1) return null;
  expect(res.code, res.stderr).toBe(0);
  return (JSON.parse(res.stdout) as { agent: WireAgent }).agent;
}

async function createEntry(server: ServerProcess, ...args: string[]): Promise<string> {
  const res = await server.cli('entry', 'create', '--output', 'json', ...args);
  expect(res.code, res.stderr + res.stdout).toBe(0);
  return (JSON.parse(res.stdout) as { entry: { id: string } }).entry.id;
}

/** A join_token agent half whose payload is sent as is (the real one refuses malformed tokens up front). */
function rawJoinToken(payload: string): NodeAttestorAgent {
  return {
    name: 'join_token',
    payload: async () => Buffer.from(payload),
    respond: async () => {
      throw new Error('join_token never answers challenges');
    },
  };
}

const sortedIds = (agents: readonly WireAgent[]) => agents.map((a) => a.spiffe_id).sort();
const selectorsOf = (agent: WireAgent) => agent.selectors.map((s) => `${s.type}:${s.value}`).sort();

// ================================================================================================
// One server with all three node attestors.
// ================================================================================================
let server: ServerProcess;
let serverDir: { dir: string; cleanup(): void };
let bundlePem: string;

beforeAll(async () => {
  work = makeTempDir('sigil-e2e-agent-api-');
  writeFileSync(file('ext.cnf'), EXTENSIONS);
  makeCert('nodeca', 'Node Root CA', 'ca', null);
  makeCert('foreignca', 'Foreign Root CA', 'ca', null);
  makeCert('nodex', 'node-x', 'leaf', 'nodeca');
  makeCert('nodey', 'node-y', 'leaf', 'nodeca');
  makeCert('nodeban', 'node-ban', 'leaf', 'nodeca');
  makeCert('alien', 'node-alien', 'leaf', 'foreignca');
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other.key');
  writeFileSync(file('sa.pub.pem'), saKey.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(
    file('server.json'),
    JSON.stringify({
      trust_domain: 'example.org',
      node_attestors: {
        join_token: {},
        x509pop: { ca_bundle_path: file('nodeca.pem') },
        k8s_sat: { clusters: { prod: { service_account_key_files: [file('sa.pub.pem')] } } },
      },
    }),
  );
  serverDir = makeTempDir('sigil-e2e-agent-api-server-');
  server = await startServerProcess({ dataDir: serverDir.dir, configFile: file('server.json') });
  bundlePem = (await server.cli('bundle', 'show', '--format', 'pem')).stdout;
  expect(bundlePem).toContain('BEGIN CERTIFICATE');
}, 60_000);

afterAll(async () => {
  for (const connection of openConnections) connection.close();
  await server?.stop();
  serverDir?.cleanup();
  work?.cleanup();
});

describe('refused attestation', () => {
  /** Refusal with exactly `details`, no node record left, and the secret nowhere in the server log. */
  async function expectRefused(
    attestor: NodeAttestorAgent,
    details: string | RegExp,
    options: { wouldBeId?: string; secret?: string } = {},
  ): Promise<void> {
    const logStart = server.logs().length;
    const before = sortedIds(await listAgents(server));
    const err = await refusedAttestation(server, bundlePem, attestor);
    expect({ code: err.code, details: err.details }).toEqual({
      code: status.PERMISSION_DENIED,
      details: typeof details === 'string' ? details : expect.stringMatching(details),
    });
    const after = sortedIds(await listAgents(server));
    expect(after).toEqual(before);
    if (options.wouldBeId) expect(after).not.toContain(options.wouldBeId);
    // The refusal is logged with its reason...
    await waitFor(
      () =>
        serverLog(server, 'Agent API call refused', logStart).some(
          (r) => r.rpc === 'Attest' && r.reason === err.details,
        ),
      5_000,
      () => `no "Agent API call refused" line for ${details}:\n${server.logs().slice(logStart)}`,
    );
    // ...and the bearer secret is nowhere in the log.
    if (options.secret) expect(server.logs()).not.toContain(options.secret);
  }

  it('refuses an unknown join token', async () => {
    const token = '0f0e0d0c-aaaa-4bbb-8ccc-123456789abc';
    await expectRefused(
      createNodeAttestorAgent('join_token', { token }),
      'join_token: join token is unknown or already used',
      {
        wouldBeId: `${TD}/sigil/agent/join_token/${token}`,
        secret: token,
      },
    );
  });

  it('refuses a join token that was already used', async () => {
    const token = await generateToken(server);
    const first = kept(await attestWithToken(server, bundlePem, token));
    expect(first.state.spiffeId).toBe(`${TD}/sigil/agent/join_token/${token}`);
    await waitFor(
      () => serverLog(server, 'Agent attested').some((r) => r.agentId === first.state.spiffeId),
      5_000,
      () => `no "Agent attested" line for ${first.state.spiffeId}`,
    );
    const logBefore = server.logs().length;
    await expectRefused(
      createNodeAttestorAgent('join_token', { token }),
      'join_token: join token is unknown or already used',
    );
    // The first use put the token into the agent's ID (as SPIRE does); the refusal adds it nowhere.
    const refusalLines = server.logs().slice(logBefore);
    expect(refusalLines).toContain('Agent API call refused');
    expect(refusalLines).not.toContain(token);
    // Still exactly one agent for that token: the second try did not touch it.
    expect((await showAgent(server, first.state.spiffeId))?.serial).toBe(
      describeCertificate(first.state.chain[0]!).serialHex,
    );
  });

  it('refuses an expired join token', async () => {
    const token = await generateToken(server, '--ttl', '1s');
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    await expectRefused(createNodeAttestorAgent('join_token', { token }), 'join_token: join token expired', {
      wouldBeId: `${TD}/sigil/agent/join_token/${token}`,
      secret: token,
    });
  });

  it('refuses a malformed join token', async () => {
    const secret = 'not a token; DROP TABLE nodes';
    await expectRefused(rawJoinToken(secret), 'join_token: payload is not a well-formed join token', {
      secret,
    });
  });

  it('refuses an attestor the server does not enable', async () => {
    const tpm: NodeAttestorAgent = { ...rawJoinToken('x'), name: 'tpm_devid' };
    await expectRefused(
      tpm,
      'node attestor "tpm_devid" is not enabled on this server (enabled: join_token, x509pop, k8s_sat)',
    );
  });

  it('refuses x509pop with a certificate from a CA the server does not trust', async () => {
    await expectRefused(
      x509popAgent('alien'),
      'x509pop: certificate chain does not verify against the configured CA bundle: no configured root or ' +
        'supplied intermediate signed the leaf "O=Sigil E2E, CN=node-alien" (its issuer is "O=Sigil E2E, CN=Foreign Root CA")',
      { wouldBeId: `${TD}/sigil/agent/x509pop/${sha1Fingerprint('alien')}` },
    );
  });

  it('refuses x509pop when the challenge is signed with a key other than the certificate’s', async () => {
    const real = x509popAgent('nodey');
    const otherKey = parsePrivateKey(readFileSync(file('other.key'), 'utf8'));
    let challenged = 0;
    const impostor: NodeAttestorAgent = {
      name: 'x509pop',
      payload: () => real.payload(),
      respond: async (challenge) => {
        challenged++;
        return signChallenge(otherKey, decodeChallenge(challenge));
      },
    };
    await expectRefused(impostor, 'x509pop: challenge signature is invalid', {
      wouldBeId: `${TD}/sigil/agent/x509pop/${sha1Fingerprint('nodey')}`,
    });
    // The refusal came after a real challenge round trip over the stream.
    expect(challenged).toBe(1);
  });

  it.each([
    [
      'of the wrong audience',
      () => saToken({ aud: ['kubernetes'] }),
      'k8s_sat: token audience ["kubernetes"] does not include "sigil-server"',
    ],
    ['expired', () => saToken({ exp: Math.floor(Date.now() / 1000) - 30 }), /^k8s_sat: token expired at /],
    [
      'signed by an unknown key',
      () => saToken({}, strangerKey.privateKey),
      'k8s_sat: token signature does not verify with any service account key of cluster "prod"',
    ],
  ])('refuses a k8s_sat token %s', async (_, makeToken, details) => {
    const token = makeToken();
    await expectRefused(k8sAgent(token, 'bad-token'), details, {
      wouldBeId: `${TD}/sigil/agent/k8s_sat/prod/${POD_UID}`,
      secret: token.split('.')[2]!,
    });
    expect(server.logs()).not.toContain(token.split('.')[1]!);
  });
});

describe('x509pop and k8s_sat attestation over the real stream', () => {
  let nodeX: Attested;
  let k8s: Attested;
  const nodeXId = () => `${TD}/sigil/agent/x509pop/${sha1Fingerprint('nodex')}`;

  it('attests an openssl-made node certificate: agent ID from its SHA-1 fingerprint, x509pop selectors', async () => {
    nodeX = kept(await attestWith(server, bundlePem, x509popAgent('nodex')));
    expect(nodeX.state.spiffeId).toBe(nodeXId());
    expect(describeCertificate(nodeX.state.chain[0]!).spiffeId).toBe(nodeXId());
    expect(nodeX.state.canReattest).toBe(true);
    const record = await showAgent(server, nodeXId());
    expect(record).toMatchObject({
      attestation_type: 'x509pop',
      banned: false,
      can_reattest: true,
      serial: describeCertificate(nodeX.state.chain[0]!).serialHex,
    });
    const serial = openssl('x509', '-in', 'nodex.pem', '-noout', '-serial')
      .trim()
      .split('=')[1]!
      .toLowerCase();
    expect(selectorsOf(record!)).toEqual(
      [
        'x509pop:subject:cn:node-x',
        `x509pop:ca:fingerprint:${sha1Fingerprint('nodeca')}`,
        'x509pop:san:dns:node-x.example.org',
        `x509pop:serialnumber:${serial}`,
        `spiffe_id:${nodeXId()}`,
      ].sort(),
    );
  });

  it('authorizes entries under a node entry that selects the x509pop agent', async () => {
    const entry = (...args: string[]) => createEntry(server, ...args);
    await Promise.all([
      entry('--node', '--spiffe-id', `${TD}/nodes/x`, '--selector', 'x509pop:subject:cn:node-x'),
      entry('--spiffe-id', `${TD}/x/web`, '--parent-id', `${TD}/nodes/x`, '--selector', 'unix:uid:1000'),
      // A node entry for another CN must not alias this agent.
      entry('--node', '--spiffe-id', `${TD}/nodes/z`, '--selector', 'x509pop:subject:cn:node-z'),
      entry('--spiffe-id', `${TD}/z/web`, '--parent-id', `${TD}/nodes/z`, '--selector', 'unix:uid:1000'),
    ]);
    const explain = await server.cli('entry', 'explain', '--agent', nodeXId(), '--output', 'json');
    expect(explain.code, explain.stderr).toBe(0);
    const body = JSON.parse(explain.stdout) as {
      aliases: string[];
      entries: Array<{ entry: { spiffe_id: string } }>;
    };
    expect(body.aliases).toEqual([`${TD}/nodes/x`]);
    expect(body.entries.map((e) => e.entry.spiffe_id)).toEqual([`${TD}/x/web`]);
  });

  it('attests with a k8s_sat token signed by the configured key, and attests again with it', async () => {
    const agentId = `${TD}/sigil/agent/k8s_sat/prod/${POD_UID}`;
    k8s = kept(await attestWith(server, bundlePem, k8sAgent(saToken(), 'sa-token')));
    expect(k8s.state).toMatchObject({ spiffeId: agentId, canReattest: true });
    const record = await showAgent(server, agentId);
    expect(record).toMatchObject({ attestation_type: 'k8s_sat', can_reattest: true });
    expect(selectorsOf(record!)).toEqual(
      [
        'k8s_sat:cluster:prod',
        'k8s_sat:agent_ns:sigil',
        'k8s_sat:agent_sa:agent',
        'k8s_sat:agent_pod_name:sigil-agent-x7k2p',
        `k8s_sat:agent_pod_uid:${POD_UID}`,
        'k8s_sat:agent_node_name:node-1',
        'k8s_sat:agent_node_uid:aa00bb11-cc22-dd33-ee44-ff5566778899',
        `spiffe_id:${agentId}`,
      ].sort(),
    );
    expect((await k8s.connection.fetchBundles()).bundle.length).toBeGreaterThan(0);

    // canReattest: the same evidence attests again, to the same ID, with a new SVID...
    const again = kept(await attestWith(server, bundlePem, k8sAgent(saToken(), 'sa-token')));
    expect(again.state.spiffeId).toBe(agentId);
    const newSerial = describeCertificate(again.state.chain[0]!).serialHex;
    expect(newSerial).not.toBe(describeCertificate(k8s.state.chain[0]!).serialHex);
    expect((await showAgent(server, agentId))?.serial).toBe(newSerial);
    expect(
      serverLog(server, 'Agent attested')
        .filter((r) => r.agentId === agentId)
        .map((r) => r.reattest),
    ).toEqual([false, true]);
    // ...and the SVID it replaced no longer authenticates.
    const stale = await rejectionOf(k8s.connection.fetchBundles());
    expect(stale.code).toBe(status.PERMISSION_DENIED);
    expect(stale.details).toMatch(/presented an SVID that is no longer current/);
    expect((await again.connection.fetchBundles()).bundle.length).toBeGreaterThan(0);
    k8s = again;
  });

  describe('authorized signing', () => {
    let foreignEntryId: string;
    let ownEntryId: string;

    beforeAll(async () => {
      [ownEntryId, foreignEntryId] = await Promise.all([
        createEntry(
          server,
          '--spiffe-id',
          `${TD}/x/api`,
          '--parent-id',
          `${TD}/nodes/x`,
          '--selector',
          'unix:uid:1001',
        ),
        createEntry(
          server,
          '--spiffe-id',
          `${TD}/k8s/db`,
          '--parent-id',
          k8s.state.spiffeId,
          '--selector',
          'unix:uid:1002',
        ),
      ]);
    });

    it('signs CSRs for the agent’s own entries and refuses, per result, an entry of another agent', async () => {
      const own = createSvidKeyRequest();
      const foreign = createSvidKeyRequest();
      const { results } = await nodeX.connection.signX509Svids([
        { entryId: ownEntryId, csr: own.csr },
        { entryId: foreignEntryId, csr: foreign.csr },
      ]);
      expect(results).toHaveLength(2);
      const [ok, refused] = results as [(typeof results)[0], (typeof results)[0]];
      expect(ok.error).toBe('');
      const leaf = Buffer.from(ok.svidChain[0]!);
      expect(describeCertificate(leaf).spiffeId).toBe(`${TD}/x/api`);
      // The SVID carries the CSR's key and chains to the bundle (checked by openssl, not by us).
      const { X509Certificate } = await import('node:crypto');
      expect(new X509Certificate(leaf).publicKey.export({ type: 'spki', format: 'der' })).toEqual(
        own.spkiDer,
      );
      writeFileSync(file('signed.pem'), encodePem('CERTIFICATE', leaf));
      writeFileSync(file('bundle.pem'), bundlePem);
      const verify = await runCommand('openssl', [
        'verify',
        '-CAfile',
        file('bundle.pem'),
        file('signed.pem'),
      ]);
      expect(verify.stdout + verify.stderr).toContain('signed.pem: OK');

      expect(refused).toEqual({
        entryId: foreignEntryId,
        svidChain: [],
        expiresAt: 0,
        error: `entry ${foreignEntryId} is not authorized for ${nodeX.state.spiffeId}`,
      });
      // The owner gets it.
      const owner = await k8s.connection.signX509Svids([{ entryId: foreignEntryId, csr: foreign.csr }]);
      expect(owner.results[0]!.error).toBe('');
      expect(describeCertificate(Buffer.from(owner.results[0]!.svidChain[0]!)).spiffeId).toBe(`${TD}/k8s/db`);
    });

    it('mints JWT-SVIDs for its own entries and refuses another agent’s with PERMISSION_DENIED', async () => {
      const minted = await nodeX.connection.mintJwtSvid(ownEntryId, ['billing']);
      const claims = JSON.parse(Buffer.from(minted.token.split('.')[1]!, 'base64url').toString()) as {
        sub: string;
        aud: string[] | string;
      };
      expect(claims.sub).toBe(`${TD}/x/api`);
      const err = await rejectionOf(nodeX.connection.mintJwtSvid(foreignEntryId, ['billing']));
      expect({ code: err.code, details: err.details }).toEqual({
        code: status.PERMISSION_DENIED,
        details: `entry ${foreignEntryId} is not authorized for ${nodeX.state.spiffeId}`,
      });
    });
  });
});

describe('a banned agent', () => {
  it('is refused on every call and cannot attest again with its x509pop evidence', async () => {
    const agentId = `${TD}/sigil/agent/x509pop/${sha1Fingerprint('nodeban')}`;
    const banned = kept(await attestWith(server, bundlePem, x509popAgent('nodeban')));
    expect(banned.state.spiffeId).toBe(agentId);
    // Works before the ban: the refusals below are the ban's doing.
    expect((await banned.connection.fetchBundles()).bundle.length).toBeGreaterThan(0);
    expect((await firstSyncEvent(banned.connection)).data).toBeDefined();

    const ban = await server.cli('agent', 'ban', '--spiffe-id', agentId);
    expect(ban.code, ban.stderr).toBe(0);
    const expected = { code: status.PERMISSION_DENIED, details: `agent ${agentId} is banned` };
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['RenewAgentSvid', () => banned.connection.renewAgentSvid(createSvidKeyRequest().csr)],
      [
        'SignX509Svids',
        () => banned.connection.signX509Svids([{ entryId: 'x', csr: createSvidKeyRequest().csr }]),
      ],
      ['MintJwtSvid', () => banned.connection.mintJwtSvid('x', ['a'])],
      ['FetchBundles', () => banned.connection.fetchBundles()],
    ];
    for (const [name, call] of calls) {
      const err = await rejectionOf(call());
      expect({ name, code: err.code, details: err.details }).toEqual({ name, ...expected });
    }
    const sync = await firstSyncEvent(banned.connection);
    expect({ code: sync.error?.code, details: sync.error?.details }).toEqual(expected);

    const again = await refusedAttestation(server, bundlePem, x509popAgent('nodeban'));
    expect({ code: again.code, details: again.details }).toEqual(expected);
    // Banning clears the serial (as SPIRE); the refused attestation issued nothing new.
    expect(await showAgent(server, agentId)).toMatchObject({ banned: true, serial: '' });
  });
});

// ================================================================================================
// Agent SVID renewal with a real agent process and a short agent SVID lifetime.
// ================================================================================================
describe('agent SVID renewal (agent_svid_ttl: 8s)', () => {
  const AGENT_SVID_TTL_MS = 8_000;
  let renewServer: ServerProcess;
  let renewServerDir: { dir: string; cleanup(): void };
  let agentDir: { dir: string; cleanup(): void };
  let agent: AgentProcess;
  let agentId: string;
  let renewBundlePem: string;
  let attested: { serverSerial: string; agentSerial: string };

  /** Serial of the agent SVID the agent keeps on disk. */
  const agentSerial = () =>
    describeCertificate(
      decodePemBlocks(readFileSync(path.join(agent.dataDir, 'agent-svid.pem'), 'utf8'), 'CERTIFICATE')[0]!,
    ).serialHex;

  /** The agent's log records with message `msg`. */
  const agentLog = (msg: string) =>
    agent
      .logs()
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes(`"msg":"${msg}"`))
      .map((line) => JSON.parse(line) as { time: string; expiresAt?: string });

  beforeAll(async () => {
    writeFileSync(
      file('renew-server.yaml'),
      // Below the default min_svid_ttl (1m), which holds the server's own lifetimes too.
      'trust_domain: example.org\nmin_svid_ttl: 1s\nagent_svid_ttl: 8s\nnode_attestors:\n  join_token: {}\n',
    );
    renewServerDir = makeTempDir('sigil-e2e-renew-server-');
    renewServer = await startServerProcess({
      dataDir: renewServerDir.dir,
      configFile: file('renew-server.yaml'),
    });
    renewBundlePem = (await renewServer.cli('bundle', 'show', '--format', 'pem')).stdout;
    agentDir = makeSharedDir('sigil-e2e-renew-agent-');
    writeFileSync(path.join(agentDir.dir, 'bundle.pem'), renewBundlePem);
    const token = await generateToken(renewServer, '--spiffe-id', `${TD}/renew-node`);
    agent = await startAgentProcess(renewServer, {
      root: agentDir.dir,
      joinToken: token,
      trustBundlePath: path.join(agentDir.dir, 'bundle.pem'),
    });
    agentId = `${TD}/sigil/agent/join_token/${token}`;
    // Read at once: the first renewal is due about 4 s from now.
    attested = { serverSerial: (await showAgent(renewServer, agentId))!.serial, agentSerial: agentSerial() };
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await renewServer?.stop();
    agentDir?.cleanup();
    renewServerDir?.cleanup();
  });

  async function workloadGets(spiffeId: string): Promise<void> {
    await waitFor(
      async () => {
        const res = await asWorkload(NOBODY, agent, 'fetch', 'x509', '--output', 'json', '--timeout', '3000');
        if (res.code !== 0) return false;
        const body = JSON.parse(res.stdout) as { svids: Array<{ spiffe_id: string }> };
        return body.svids.some((s) => s.spiffe_id === spiffeId);
      },
      15_000,
      () => `the workload never got ${spiffeId}:\n${agent.logs()}`,
    );
  }

  it('refuses an attestor this server does not enable', async () => {
    const err = await refusedAttestation(renewServer, renewBundlePem, x509popAgent('nodex'));
    expect({ code: err.code, details: err.details }).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'node attestor "x509pop" is not enabled on this server (enabled: join_token)',
    });
    expect(sortedIds(await listAgents(renewServer))).toEqual([agentId]);
  });

  it('renews the agent SVID halfway through its life and keeps syncing after every renewal', async () => {
    expect(attested.agentSerial).toBe(attested.serverSerial);
    for (const round of [1, 2]) {
      await waitFor(
        () => agentLog('Agent SVID renewed').length >= round,
        20_000,
        () => `renewal ${round} never happened:\n${agent.logs()}`,
      );
      await createEntry(
        renewServer,
        '--spiffe-id',
        `${TD}/after-renewal-${round}`,
        '--parent-id',
        `${TD}/renew-node`,
        '--selector',
        `unix:uid:${NOBODY}`,
      );
      // A new entry reaches the workload: the sync stream reconnected with the renewed SVID.
      await workloadGets(`${TD}/after-renewal-${round}`);
    }
    // Each renewal comes about half an 8 s lifetime after the SVID before it, never in a burst and
    // never after that SVID expired.
    const times = [agentLog('Node attested')[0]!, ...agentLog('Agent SVID renewed')].map((r) =>
      Date.parse(r.time),
    );
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(2);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThan(AGENT_SVID_TTL_MS * 0.3);
      expect(gap).toBeLessThan(AGENT_SVID_TTL_MS);
    }
    // The server's record moved on from the attested SVID and names the one the agent holds now.
    await waitFor(
      async () => (await showAgent(renewServer, agentId))!.serial === agentSerial(),
      5_000,
      () => 'server and agent disagree on the current agent SVID',
    );
    expect((await showAgent(renewServer, agentId))!.serial).not.toBe(attested.serverSerial);
    expect(agent.logs()).not.toContain('Server refused the agent');
    expect(agent.logs()).not.toContain('Agent SVID renewal failed');
  }, 60_000);

  it('keeps its data dir 0700 and the agent SVID key 0600 (after renewals rewrote them)', () => {
    expect(agentLog('Agent SVID renewed').length).toBeGreaterThanOrEqual(2);
    expect(statSync(agent.dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(agent.dataDir, 'agent-svid.key')).mode & 0o777).toBe(0o600);
  });
});
