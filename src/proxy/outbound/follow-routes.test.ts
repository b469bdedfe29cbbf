import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { fixedRandom } from '../../spiffe/seeded-random.test-support.js';
import type { RouteTable } from '../routes/index.js';
import { followRoutes, namedServices } from './follow-routes.js';
import { OutboundRouter } from './router.js';
import { ANY_PATH, rule, table, testMetrics } from './router.test-support.js';

/** A routes file sending parent `stable`'s traffic to `backend`. */
const routes = (backend: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ group: "", kind: Service, name: stable }]
  rules: [{ backendRefs: [{ name: ${backend} }] }]
`;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setup(text: string, services: string[]) {
  const dir = mkdtempSync(path.join(tmpdir(), 'routes-'));
  dirs.push(dir);
  const file = path.join(dir, 'routes.yaml');
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
    clock: new ManualClock(),
    logger: logger as never,
  });
  const backendOf = (t: RouteTable) => [...t.http.values()][0]?.[0]?.rule.backends[0]?.service;
  return { file, router, follower, errors, backendOf };
}

describe('followRoutes', () => {
  it('loads the table at start and refuses to start on a broken file', () => {
    const { router, follower, backendOf } = setup(routes('v2'), ['stable', 'v2']);
    expect(backendOf(router.current)).toBe('v2');
    expect([...follower.namedServices()].sort()).toEqual(['stable', 'v2']);
    follower.close();
    expect(() => setup(routes('v3'), ['stable', 'v2'])).toThrow(/"v3" is not a configured service/);
  });

  it('checks the file again when the services change: a route naming a new service takes effect', () => {
    const { file, router, follower, errors, backendOf } = setup(routes('v1'), ['stable', 'v1']);
    writeFileSync(file, routes('v3'));
    follower.servicesChanged(new Set(['stable', 'v1']));
    expect(errors).toEqual([expect.stringMatching(/"v3" is not a configured service/)]);
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
