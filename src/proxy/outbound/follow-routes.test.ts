import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { fixedRandom } from '../../spiffe/seeded-random.test-support.js';
import type { RouteTable } from '../routes/model.js';
import { followRoutes, namedServices, type ParseRoutes } from './follow-routes.js';
import { OutboundRouter } from './router.js';
import { ANY_PATH, rule, table, testMetrics } from './router.test-support.js';

/** A stand-in routes format: `parent -> backend`, refused when a name is not a configured service. */
const parse: ParseRoutes = (text, file, services) => {
  const [parent, backend] = text.trim().split(' -> ') as [string, string];
  for (const name of [parent, backend])
    if (!services.has(name)) throw new SigilError('ERR_CONFIG_INVALID', `${file}: no service ${name}`);
  return table(parent, [{ match: ANY_PATH, rule: rule({ [backend]: 1 }) }]);
};

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setup(text: string, services: string[]) {
  const dir = mkdtempSync(path.join(tmpdir(), 'routes-'));
  dirs.push(dir);
  const file = path.join(dir, 'routes.txt');
  writeFileSync(file, text);
  const errors: string[] = [];
  const logger = {
    info() {},
    warn() {},
    debug() {},
    error: (fields: Record<string, unknown>) => errors.push(String(fields.err)),
  };
  const router = new OutboundRouter({
    services: new Map(),
    random: fixedRandom(0),
    clock: new ManualClock(),
    metrics: testMetrics().metrics,
  });
  const follower = followRoutes(file, router, new Set(services), {
    parse,
    clock: new ManualClock(),
    logger: logger as never,
  });
  const backendOf = (t: RouteTable) => [...t.http.values()][0]?.[0]?.rule.backends[0]?.service;
  return { file, router, follower, errors, backendOf };
}

describe('followRoutes', () => {
  it('loads the table at start and refuses to start on a broken file', () => {
    const { router, follower, backendOf } = setup('stable -> v2', ['stable', 'v2']);
    expect(backendOf(router.current)).toBe('v2');
    expect([...follower.namedServices()].sort()).toEqual(['stable', 'v2']);
    follower.close();
    expect(() => setup('stable -> v3', ['stable', 'v2'])).toThrow(/no service v3/);
  });

  it('checks the file again when the services change: a route naming a new service takes effect', () => {
    const { file, router, follower, errors, backendOf } = setup('stable -> v1', ['stable', 'v1']);
    writeFileSync(file, 'stable -> v3');
    follower.servicesChanged(new Set(['stable', 'v1']));
    expect(errors).toEqual([expect.stringMatching(/no service v3/)]);
    expect(backendOf(router.current)).toBe('v1');
    follower.servicesChanged(new Set(['stable', 'v1', 'v3']));
    expect(backendOf(router.current)).toBe('v3');
    follower.close();
  });

  it('names parents, backends and shadows as the services a table needs', () => {
    const names = namedServices(
      table('p', [
        { match: ANY_PATH, rule: rule({ a: 1, b: 0 }, { mirrors: [{ service: 's', share: 1 }] }) },
      ]),
    );
    expect([...names].sort()).toEqual(['a', 'b', 'p', 's']);
  });
});
