// Attacks on sigil-server run as an outsider would, against real processes and sockets: reserved
// identities through the admin API and CLI, a refused attestation that must not burn its token, and
// an impostor server the agent must refuse. The agent API listener's deadlines, caps and signing
// rate are attacked in server-listener.test.ts.

import { createPublicKey } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentApiService } from '../../proto/agent-api.js';
import { createSvidKeyRequest } from '../../src/agent/manager/csr.js';
import { attestNode } from '../../src/agent/server-client/attest.js';
import { createNodeAttestorAgent } from '../../src/attestors/node/index.js';
import { openDataStore } from '../../src/server/datastore/index.js';
import { systemClock } from '../../src/spiffe/clock.js';
import { parseSpiffeId } from '../../src/spiffe/id.js';
import { generateKey } from '../../src/spiffe/keys.js';
import { encodePem } from '../../src/spiffe/pem.js';
import { createCaCertificate } from '../../src/spiffe/x509-authority.js';
import { mintX509Svid, prepareIssuer } from '../../src/spiffe/x509-svid.js';
import {
  attestRaw,
  attestWithToken,
  bundlePemOf,
  cliJson,
  generateToken,
  newConnection,
  rejectionOf,
  serverLog,
  TRUST_DOMAIN,
} from '../support/agent-api-client.js';
import { type ServerProcess, startServerProcess } from '../support/harness.js';

const TD = 'spiffe://example.org';
const RESERVED_MESSAGE = /is reserved for Sigil's server and agents/;

let server: ServerProcess;
let bundlePem: string;

beforeAll(async () => {
  server = await startServerProcess();
  bundlePem = await bundlePemOf(server);
});
afterAll(async () => {
  await server?.stop();
});

interface AdminReply {
  error?: { code: string; message: string };
  results?: Array<{ error: { code: string; message: string } }>;
}

/** One admin REST call over the server's Unix socket, as any local tool could make it. */
function adminCall(
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; json: AdminReply }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: server.adminSocket, method, path: url, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('a workload can never be issued the server identity', () => {
  const SERVER_ID = `${TD}/sigil/server`;

  it.each([
    [
      'POST',
      '/v1/entries',
      { spiffe_id: SERVER_ID, parent_id: `${TD}/sigil/agent/x`, selectors: ['unix:uid:0'] },
    ],
    [
      'POST',
      '/v1/entries',
      { spiffe_id: `${TD}/sigil/agent/x`, node: true, selectors: ['k8s_sat:cluster:c'] },
    ],
    [
      'POST',
      '/v1/entries/batch-create',
      { entries: [{ spiffe_id: SERVER_ID, parent_id: `${TD}/n`, selectors: ['unix:uid:0'] }] },
    ],
    ['POST', '/v1/join-tokens', { spiffe_id: SERVER_ID }],
    ['POST', '/v1/x509-svids', { spiffe_id: SERVER_ID }],
    ['POST', '/v1/jwt-svids', { spiffe_id: SERVER_ID, audience: ['agents'] }],
  ])('admin API %s %s is refused', async (method, url, body) => {
    const res = await adminCall(method, url, body);
    const error = url.endsWith('batch-create') ? res.json.results?.[0]?.error : res.json.error;
    expect(error?.code, JSON.stringify(res.json)).toBe('ERR_SPIFFE_ID_RESERVED');
    expect(error?.message).toMatch(RESERVED_MESSAGE);
  });

  it.each([
    ['x509', 'mint', '--spiffe-id', SERVER_ID],
    ['jwt', 'mint', '--spiffe-id', SERVER_ID, '--audience', 'agents'],
    ['token', 'generate', '--spiffe-id', SERVER_ID],
    ['entry', 'create', '--spiffe-id', SERVER_ID, '--parent-id', `${TD}/n`, '--selector', 'unix:uid:0'],
  ])('CLI %s %s is refused', async (...args) => {
    const res = await server.cli(...args);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(RESERVED_MESSAGE);
  });

  it('nothing was stored by those attempts', async () => {
    const entries = await cliJson<{ entries: Array<{ spiffe_id: string }> }>(server, 'entry', 'show');
    expect(entries.entries.filter((e) => e.spiffe_id.includes('/sigil'))).toEqual([]);
  });

  it('an entry stored before the rule is ignored after a restart: warned about, never signed', async () => {
    const token = await generateToken(server);
    const agentId = `${TD}/sigil/agent/join_token/${token}`;
    await server.stop();
    const store = await openDataStore(
      { kind: 'sqlite', path: path.join(server.dataDir, 'datastore.sqlite3') },
      systemClock,
    );
    const legacy = await store.createEntry({
      spiffeId: SERVER_ID,
      parentId: agentId,
      selectors: [{ type: 'unix', value: 'uid:0' }],
      x509SvidTtlMs: 0,
      jwtSvidTtlMs: 0,
      dnsNames: [],
      federatesWith: [],
      admin: false,
      downstream: false,
      hint: '',
      expiresAtMs: null,
    });
    await store.close();
    server = await startServerProcess({ dataDir: server.dataDir });
    expect(
      serverLog(
        server,
        "Entries with SPIFFE IDs reserved for Sigil's server and agents are ignored: never served to agents nor minted; delete them",
      )[0],
    ).toMatchObject({
      entries: [{ id: legacy.id, spiffeId: SERVER_ID }],
    });
    const agent = await attestWithToken(server, bundlePem, token);
    try {
      const { results } = await agent.connection.signX509Svids([
        { entryId: legacy.id, csr: createSvidKeyRequest().csr },
      ]);
      expect(results[0]).toMatchObject({
        svidChain: [],
        error: `entry ${legacy.id} is not authorized for ${agentId}`,
      });
      const jwt = await rejectionOf(agent.connection.mintJwtSvid(legacy.id, ['x']));
      expect(jwt.code).toBe(status.PERMISSION_DENIED);
    } finally {
      agent.connection.close();
    }
  });
});

describe('the agent authenticates the server by more than its URI SAN', () => {
  /** A gRPC server speaking the agent API with `leaf` as its certificate; Attest always refuses. */
  async function standIn(
    isSigilServer: boolean,
  ): Promise<{ address: string; bundlePem: string; close(): void }> {
    const caKey = generateKey('ec-p256');
    const now = Date.now();
    const caDer = await createCaCertificate({
      trustDomain: TRUST_DOMAIN,
      key: caKey,
      notBeforeMs: now - 60_000,
      notAfterMs: now + 3_600_000,
    });
    const key = generateKey('ec-p256');
    const leaf = mintX509Svid(
      {
        spiffeId: parseSpiffeId(`${TD}/sigil/server`),
        publicKey: createPublicKey(key),
        notBeforeMs: now - 60_000,
        notAfterMs: now + 600_000,
        isSigilServer,
      },
      prepareIssuer(caDer, caKey),
    );
    const grpcServer = new Server();
    grpcServer.addService(agentApiService, {
      Attest: (call: { emit(e: string, err: unknown): void }) =>
        call.emit('error', { code: status.PERMISSION_DENIED, details: 'stand-in server reached' }),
    });
    const credentials = ServerCredentials.createSsl(null, [
      {
        private_key: Buffer.from(key.export({ format: 'pem', type: 'pkcs8' }) as string),
        cert_chain: Buffer.from(encodePem('CERTIFICATE', leaf)),
      },
    ]);
    const port = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    return {
      address: `127.0.0.1:${port}`,
      bundlePem: encodePem('CERTIFICATE', caDer),
      close: () => grpcServer.forceShutdown(),
    };
  }

  async function attestAgainst(isSigilServer: boolean): Promise<{ message: string; logged: string[] }> {
    const impostor = await standIn(isSigilServer);
    const logged: string[] = [];
    const connection = newConnection(
      impostor.address,
      impostor.bundlePem,
      pino({ level: 'error' }, { write: (l: string) => logged.push(l) }),
    );
    try {
      const err = await rejectionOf<Error>(
        attestNode(
          connection,
          createNodeAttestorAgent('join_token', { token: 'secret-token' }),
          TRUST_DOMAIN,
          false,
        ),
      );
      return { message: err.message, logged };
    } finally {
      connection.close();
      impostor.close();
    }
  }

  it('refuses a server whose valid SVID names spiffe://example.org/sigil/server but lacks the marker', async () => {
    const { message, logged } = await attestAgainst(false);
    expect(message).not.toContain('stand-in server reached');
    expect(logged.join('')).toMatch(
      /"msg":"Refused the server: it is not the Sigil server of our trust domain"/,
    );
    expect(logged.join('')).toContain('lacks the Sigil server marker');
  });

  it('talks to the same stand-in once its SVID carries the marker (control)', async () => {
    const { message, logged } = await attestAgainst(true);
    expect(message).toContain('stand-in server reached');
    expect(logged).toEqual([]);
  });
});

describe('a refused attestation leaves nothing behind', () => {
  it('a valid token with a malformed CSR is refused, and the token still works afterwards', async () => {
    const token = await generateToken(server, '--spiffe-id', `${TD}/rack/burned`);
    const connection = newConnection(server.agentApiAddress, bundlePem);
    try {
      const refused = await attestRaw(connection, {
        attestor: 'join_token',
        payload: Buffer.from(token),
        csr: Buffer.from('not a csr'),
      });
      expect(refused.error?.code).toBe(status.INVALID_ARGUMENT);
      expect(refused.error?.details).toMatch(/^csr: /);
    } finally {
      connection.close();
    }
    const agents = await cliJson<{ agents: Array<{ spiffe_id: string }> }>(server, 'agent', 'list');
    expect(agents.agents.map((a) => a.spiffe_id)).not.toContain(`${TD}/sigil/agent/join_token/${token}`);
    const aliases = await cliJson<{ entries: unknown[] }>(
      server,
      'entry',
      'show',
      '--spiffe-id',
      `${TD}/rack/burned`,
    );
    expect(aliases.entries).toEqual([]);

    const agent = await attestWithToken(server, bundlePem, token);
    agent.connection.close();
    expect(agent.state.spiffeId).toBe(`${TD}/sigil/agent/join_token/${token}`);
    const after = await cliJson<{ entries: unknown[] }>(
      server,
      'entry',
      'show',
      '--spiffe-id',
      `${TD}/rack/burned`,
    );
    expect(after.entries).toHaveLength(1);
  });

  it('of two attestations racing with one token exactly one succeeds', async () => {
    const token = await generateToken(server, '--spiffe-id', `${TD}/rack/raced`);
    const outcomes = await Promise.allSettled([
      attestWithToken(server, bundlePem, token),
      attestWithToken(server, bundlePem, token),
    ]);
    for (const o of outcomes) if (o.status === 'fulfilled') o.value.connection.close();
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(String(refused[0]?.reason)).toContain('join token is unknown or already used');
    const aliases = await cliJson<{ entries: unknown[] }>(
      server,
      'entry',
      'show',
      '--spiffe-id',
      `${TD}/rack/raced`,
    );
    expect(aliases.entries).toHaveLength(1);
  });
});
