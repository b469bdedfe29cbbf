// Error mapping at every edge (admin REST, agent gRPC, Workload API): each table places every code,
// in the right class, the same way across edges; and a real request that hits an internal failure is
// answered 500 / INTERNAL with nothing of the failure in the answer and all of it (stack and cause)
// in the log.
import { Client, credentials, Server, ServerCredentials, type ServiceError, status } from '@grpc/grpc-js';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { agentApiService } from '../../proto/agent-api.js';
import { createSvidKeyRequest } from '../../src/agent/manager/csr.js';
import { WORKLOAD_STATUS_BY_CODE } from '../../src/agent/workloadapi/error-status.js';
import type { NodeAttestorServer } from '../../src/attestors/node/index.js';
import { buildAdminApp } from '../../src/server/api/admin/app.js';
import type { AdminDeps } from '../../src/server/api/admin/deps.js';
import type { AgentApiDeps } from '../../src/server/api/agent/deps.js';
import { GRPC_STATUS_BY_CODE, toServiceError } from '../../src/server/api/agent/grpc-status.js';
import { DEFAULT_AGENT_API_LIMITS } from '../../src/server/api/agent/limits.js';
import { createAgentService } from '../../src/server/api/agent/service.js';
import type { DataStore } from '../../src/server/datastore/types.js';
import { createServerMetrics } from '../../src/server/metrics.js';
import { systemClock } from '../../src/spiffe/clock.js';
import { SIGIL_ERROR_CODES, SigilError, type SigilErrorCode } from '../../src/spiffe/errors.js';
import { HTTP_STATUS_BY_CODE } from '../../src/spiffe/http-status.js';
import { parseTrustDomain } from '../../src/spiffe/id.js';
import { type AdminFixture, startAdminFixture } from '../support/admin-app.js';

/** What a failure deep inside would say: a path and a detail no caller may see. */
const SECRET = 'sqlite: database disk image is malformed (/var/lib/sigil/secret-path/datastore.sqlite3)';
const CAUSE = 'SQLITE_CORRUPT: root cause below the surface';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The classes a code can fall in, decided once here and checked against every edge. */
type ErrorClass =
  | 'input'
  | 'auth'
  | 'denied'
  | 'not-found'
  | 'conflict'
  | 'limit'
  | 'unimplemented'
  | 'unavailable'
  | 'internal';

const CLASS_OF: Record<SigilErrorCode, ErrorClass> = {
  ERR_SPIFFE_ID_INVALID: 'input',
  ERR_SPIFFE_ID_RESERVED: 'input',
  ERR_TRUST_DOMAIN_INVALID: 'input',
  ERR_SELECTOR_INVALID: 'input',
  ERR_DURATION_INVALID: 'input',
  ERR_PEM_INVALID: 'input',
  ERR_DER_INVALID: 'input',
  ERR_KEY_INVALID: 'input',
  ERR_CSR_INVALID: 'input',
  ERR_X509_SVID_INVALID: 'input',
  ERR_X509_VERIFY_FAILED: 'auth',
  ERR_JWT_INVALID: 'input',
  ERR_JWT_EXPIRED: 'input',
  ERR_JWT_AUDIENCE: 'input',
  ERR_JWT_ALG: 'input',
  ERR_JWT_KEY_NOT_FOUND: 'input',
  ERR_JWT_SIGNATURE: 'input',
  ERR_BUNDLE_INVALID: 'input',
  ERR_BUNDLE_NOT_FOUND: 'not-found',
  ERR_CONFIG_INVALID: 'internal',
  ERR_INPUT_INVALID: 'input',
  ERR_POLICY_INVALID: 'input',
  ERR_ENTRY_DUPLICATE: 'conflict',
  ERR_ENTRY_NOT_FOUND: 'not-found',
  ERR_NODE_NOT_FOUND: 'not-found',
  ERR_TOKEN_NOT_FOUND: 'not-found',
  ERR_TOKEN_EXPIRED: 'not-found',
  ERR_BUNDLE_DUPLICATE: 'conflict',
  ERR_REVISION_CONFLICT: 'conflict',
  ERR_DATASTORE: 'internal',
  ERR_CA_UNAVAILABLE: 'unavailable',
  ERR_AUTHORITY_NOT_FOUND: 'not-found',
  ERR_AUTHORITY_STATE: 'conflict',
  ERR_UPSTREAM_INVALID: 'unavailable',
  ERR_UNAUTHENTICATED: 'auth',
  ERR_PERMISSION_DENIED: 'denied',
  ERR_SOCKET_UNSAFE: 'internal',
  ERR_RESOURCE_EXHAUSTED: 'limit',
  ERR_DATA_DIR_LOCKED: 'internal',
  ERR_UNAVAILABLE: 'unavailable',
  ERR_NOT_IMPLEMENTED: 'unimplemented',
};

const HTTP_OF_CLASS: Record<ErrorClass, readonly number[]> = {
  input: [400],
  auth: [401],
  denied: [403],
  'not-found': [404],
  conflict: [409],
  limit: [429],
  unimplemented: [501],
  unavailable: [503],
  internal: [500],
};

const AGENT_OF_CLASS: Record<ErrorClass, readonly status[]> = {
  input: [status.INVALID_ARGUMENT],
  auth: [status.UNAUTHENTICATED],
  denied: [status.PERMISSION_DENIED],
  // A join token the server does not hold is refused evidence (SPIRE: PermissionDenied).
  'not-found': [status.NOT_FOUND, status.PERMISSION_DENIED],
  conflict: [status.ALREADY_EXISTS, status.FAILED_PRECONDITION, status.ABORTED],
  limit: [status.RESOURCE_EXHAUSTED],
  unimplemented: [status.UNIMPLEMENTED],
  unavailable: [status.UNAVAILABLE],
  internal: [status.INTERNAL],
};

/** spiffe-facts.md §5.3: a workload only ever causes bad input or has no identity; the rest is ours. */
const WORKLOAD_OF_CLASS: Record<ErrorClass, readonly status[]> = {
  input: [status.INVALID_ARGUMENT],
  // A token that fails verification is bad input to ValidateJWTSVID; a caller we cannot vouch for has no identity.
  auth: [status.INVALID_ARGUMENT, status.PERMISSION_DENIED],
  denied: [status.PERMISSION_DENIED],
  // ValidateJWTSVID of a token from an unknown trust domain fails validation; other lookups are ours.
  'not-found': [status.INVALID_ARGUMENT, status.INTERNAL],
  conflict: [status.INTERNAL],
  limit: [status.UNAVAILABLE],
  unimplemented: [status.UNIMPLEMENTED],
  unavailable: [status.UNAVAILABLE],
  internal: [status.INTERNAL],
};

describe('every error code has its place at every edge', () => {
  it('each table holds exactly the codes there are', () => {
    const all = [...SIGIL_ERROR_CODES].sort();
    expect(Object.keys(HTTP_STATUS_BY_CODE).sort()).toEqual(all);
    expect(Object.keys(GRPC_STATUS_BY_CODE).sort()).toEqual(all);
    expect(Object.keys(WORKLOAD_STATUS_BY_CODE).sort()).toEqual(all);
  });

  it.each(SIGIL_ERROR_CODES.map((code) => [code, CLASS_OF[code]] as const))(
    '%s (%s) maps to its class at the admin API, the agent API and the Workload API',
    (code, cls) => {
      expect(HTTP_OF_CLASS[cls]).toContain(HTTP_STATUS_BY_CODE[code]);
      expect(AGENT_OF_CLASS[cls]).toContain(GRPC_STATUS_BY_CODE[code]);
      expect(WORKLOAD_OF_CLASS[cls]).toContain(WORKLOAD_STATUS_BY_CODE[code]);
    },
  );

  it('never blames the caller for an unavailable or expired CA', () => {
    for (const code of ['ERR_CA_UNAVAILABLE', 'ERR_UPSTREAM_INVALID'] as const) {
      expect([HTTP_STATUS_BY_CODE[code], GRPC_STATUS_BY_CODE[code], WORKLOAD_STATUS_BY_CODE[code]]).toEqual([
        503,
        status.UNAVAILABLE,
        status.UNAVAILABLE,
      ]);
    }
  });
});

describe('the agent API answers every code as its table says', () => {
  it.each(SIGIL_ERROR_CODES)('%s', (code) => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const err = new SigilError(code, SECRET, { cause: new Error(CAUSE) });
    const answer = toServiceError(err, logger, { rpc: 'Test' });
    expect(answer.code).toBe(GRPC_STATUS_BY_CODE[code]);
    if (answer.code === status.INTERNAL) {
      expect(answer.details).toBe('internal error; see the server log');
      const record = JSON.parse(lines.join('')) as { level: number; err: { stack: string; code: string } };
      expect(record.level).toBe(50);
      expect(record.err.code).toBe(code);
      expect(record.err.stack).toContain(`caused by: Error: ${CAUSE}`);
    } else {
      expect(answer.details).toBe(SECRET);
    }
  });
});

/** A store whose every method fails the way a corrupt database does. */
function corruptStore(store: DataStore): DataStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return async () => {
        throw new SigilError('ERR_DATASTORE', SECRET, { cause: new Error(CAUSE) });
      };
    },
  });
}

describe('a real request that hits an internal failure', () => {
  async function adminApp(fixture: AdminFixture, store: DataStore) {
    const lines: string[] = [];
    const registry = new Registry();
    const deps: AdminDeps = {
      store,
      ca: fixture.ca,
      index: undefined as unknown as AdminDeps['index'],
      clock: systemClock,
      minSvidTtlMs: 60_000,
      logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }),
      metrics: createServerMetrics(registry),
      registry,
      isReady: async () => true,
    };
    const app = await buildAdminApp(deps, { auth: 'local' });
    cleanups.push(() => app.close());
    return { app, lines };
  }

  it('admin API: 500 with its code and a generic message; the log has the stack and the cause', async () => {
    const fixture = await startAdminFixture();
    cleanups.push(() => fixture.close());
    const { app, lines } = await adminApp(fixture, corruptStore(fixture.store));

    const response = await app.inject({ method: 'GET', url: '/v1/entries' });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({
      error: { code: 'ERR_DATASTORE', message: 'internal error; see the server log' },
    });
    expect(response.body).not.toContain('secret-path');
    expect(response.body).not.toContain('SQLITE_CORRUPT');
    const failed = lines
      .map((line) => JSON.parse(line) as { msg: string; level: number; err?: { stack: string } })
      .find((record) => record.msg === 'Admin request failed');
    expect(failed?.level).toBe(50);
    expect(failed?.err?.stack).toContain(SECRET);
    expect(failed?.err?.stack).toMatch(/\n\s+at /);
    expect(failed?.err?.stack).toContain(`caused by: Error: ${CAUSE}`);
  });

  it('agent API: INTERNAL with a generic message; the log has the stack and the cause', async () => {
    const lines: string[] = [];
    const exploding: NodeAttestorServer = {
      name: 'join_token',
      attest: async () => {
        throw new TypeError('cannot read properties of undefined', { cause: new Error(CAUSE) });
      },
    };
    const registry = new Registry();
    const deps = {
      ca: { trustDomain: parseTrustDomain('example.org') },
      attestors: new Map([['join_token', exploding]]),
      clock: systemClock,
      logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }),
      metrics: createServerMetrics(registry),
      onAgentRemoved: () => () => {},
    } as unknown as AgentApiDeps;
    const server = new Server();
    server.addService(agentApiService, createAgentService(deps, DEFAULT_AGENT_API_LIMITS));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    cleanups.push(() => server.forceShutdown());
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    cleanups.push(() => client.close());

    const failure = await new Promise<ServiceError>((resolve) => {
      const call = client.makeBidiStreamRequest(
        '/sigil.agent.v1.AgentApi/Attest',
        agentApiService.Attest.requestSerialize,
        agentApiService.Attest.responseDeserialize,
      );
      call.on('error', resolve);
      call.on('data', () => {});
      call.write({
        params: { attestor: 'join_token', payload: Buffer.from('x'), csr: createSvidKeyRequest().csr },
      });
    });
    expect(failure.code).toBe(status.INTERNAL);
    expect(failure.details).toBe('internal error; see the server log');
    const failed = lines
      .map((line) => JSON.parse(line) as { msg: string; rpc?: string; err?: { stack: string } })
      .find((record) => record.msg === 'Agent API call failed');
    expect(failed?.rpc).toBe('Attest');
    expect(failed?.err?.stack).toContain('TypeError: cannot read properties of undefined');
    expect(failed?.err?.stack).toContain(`caused by: Error: ${CAUSE}`);
  });
});
