// Builds the admin app over a real SQLite file and a real CA in a temp dir, for app.inject() tests.
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { type AdminAppOptions, buildAdminApp } from '../../src/server/api/admin/app.js';
import type { AdminDeps } from '../../src/server/api/admin/deps.js';
import { AuthorizedEntries, observeEntryWrites } from '../../src/server/authorized-entries/index.js';
import { ServerCa } from '../../src/server/ca/server-ca.js';
import { DEFAULT_MIN_SVID_TTL_MS } from '../../src/server/config.js';
import { openDataStore } from '../../src/server/datastore/index.js';
import type { DataStore } from '../../src/server/datastore/types.js';
import { createServerMetrics } from '../../src/server/metrics.js';
import { type Clock, systemClock } from '../../src/spiffe/clock.js';
import { parseTrustDomain } from '../../src/spiffe/id.js';
import { makeTempDir } from './harness.js';

export interface AdminFixture {
  readonly app: FastifyInstance;
  readonly store: DataStore;
  readonly ca: ServerCa;
  readonly logLines: string[];
  close(): Promise<void>;
}

export async function startAdminFixture(
  options: { trustDomain?: string; clock?: Clock; app?: AdminAppOptions } = {},
): Promise<AdminFixture> {
  const tmp = makeTempDir('sigil-admin-');
  const clock = options.clock ?? systemClock;
  const logLines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) });
  const store = await openDataStore({ kind: 'sqlite', path: path.join(tmp.dir, 'store.sqlite3') }, clock);
  const ca = await ServerCa.open({
    trustDomain: parseTrustDomain(options.trustDomain ?? 'example.org'),
    keyType: 'ec-p256',
    jwtKeyType: 'ec-p256',
    caTtlMs: 24 * 3_600_000,
    defaultX509SvidTtlMs: 3_600_000,
    defaultJwtSvidTtlMs: 300_000,
    upstream: null,
    keysDir: path.join(tmp.dir, 'keys'),
    store,
    clock,
    logger,
  });
  const registry = new Registry();
  const index = await AuthorizedEntries.load(
    store,
    `spiffe://${options.trustDomain ?? 'example.org'}/sigil/server`,
  );
  const deps: AdminDeps = {
    store: observeEntryWrites(store, index),
    ca,
    index,
    clock,
    minSvidTtlMs: DEFAULT_MIN_SVID_TTL_MS,
    logger,
    metrics: createServerMetrics(registry),
    registry,
    isReady: async () => true,
  };
  const app = await buildAdminApp(deps, options.app ?? { auth: 'local' });
  return {
    app,
    store,
    ca,
    logLines,
    close: async () => {
      await app.close();
      await store.close();
      tmp.cleanup();
    },
  };
}
