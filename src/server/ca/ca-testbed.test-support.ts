// A ServerCa for the CA's own tests: a manual clock, a real SQLite store and keys dir in a temp dir,
// the defaults below (a 24h CA, 1h SVIDs) and a logger whose lines the test can read.
import path from 'node:path';
import pino from 'pino';
import { makeTempDir } from '../../../test/support/harness.js';
import { ManualClock } from '../../spiffe/clock.js';
import { parseTrustDomain } from '../../spiffe/id.js';
import { openDataStore } from '../datastore/index.js';
import type { DataStore } from '../datastore/types.js';
import { ServerCa, type ServerCaOptions } from './server-ca.js';

export const HOUR = 3_600_000;
export const TEST_TRUST_DOMAIN = parseTrustDomain('example.org');

export interface CaTestbed {
  readonly clock: ManualClock;
  /** The store the CA gets unless `open` is told otherwise. */
  readonly store: DataStore;
  readonly keysDir: string;
  /** Everything the CAs opened here logged, at info and above. */
  logs(): string;
  /** Opens a CA on the testbed's clock, store and keys dir; `over` replaces any option. */
  open(over?: Partial<ServerCaOptions>): Promise<ServerCa>;
}

/** Whatever the testbed opens is closed by `cleanups`, in reverse order, by the caller's afterEach. */
export async function caTestbed(cleanups: Array<() => unknown>): Promise<CaTestbed> {
  const tmp = makeTempDir('sigil-ca-');
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const store = await openDataStore({ kind: 'sqlite', path: path.join(tmp.dir, 'store.sqlite3') }, clock);
  cleanups.push(tmp.cleanup, () => store.close());
  const keysDir = path.join(tmp.dir, 'keys');
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  return {
    clock,
    store,
    keysDir,
    logs: () => lines.join(''),
    open: async (over = {}) => {
      const ca = await ServerCa.open({
        trustDomain: TEST_TRUST_DOMAIN,
        keyType: 'ec-p256',
        jwtKeyType: 'ec-p256',
        caTtlMs: 24 * HOUR,
        defaultX509SvidTtlMs: HOUR,
        defaultJwtSvidTtlMs: 5 * 60_000,
        upstream: null,
        keysDir,
        store,
        clock,
        logger,
        ...over,
      });
      cleanups.push(() => ca.close());
      return ca;
    },
  };
}
