// docs/admin-api.md against the admin API the server really builds: every route the fastify app
// registers (read back from fastify's own route tree) must appear in the reference as
// `METHOD /path`, with `{param}` for a path parameter, and every route the reference names must exist.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminFixture, startAdminFixture } from '../support/admin-app.js';

const REFERENCE = path.join(import.meta.dirname, '../../docs/admin-api.md');

/**
 * `METHOD /path` for every route of a fastify route tree (printRoutes with commonPrefix: false):
 * each line is a path segment under its parent, indented 4 characters a level, with its methods.
 * HEAD, which fastify adds to every GET, is left out.
 */
function routesOfTree(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    const url = stack.join('').replace(/:([A-Za-z]+)/g, (_, name: string) => `{${name}}`);
    for (const method of (match[3] ?? '').split(', ')) {
      if (method && method !== 'HEAD') routes.push(`${method} ${url}`);
    }
  }
  return routes;
}

/** Path parameters are named as in the docs (snake_case), so `{spiffeId}` reads `{spiffe_id}`. */
function snake(route: string): string {
  return route.replace(
    /\{([A-Za-z]+)\}/g,
    (_, name: string) => `{${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}}`,
  );
}

/** Routes the reference names: `` `GET /v1/x` `` in a table cell or in the text. */
function documentedRoutes(markdown: string): Set<string> {
  const found = new Set<string>();
  for (const m of markdown.matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`/g))
    found.add(`${m[1]} ${m[2]}`);
  return found;
}

describe('docs/admin-api.md covers the admin API', () => {
  let fixture: AdminFixture;
  let routes: string[];
  beforeAll(async () => {
    fixture = await startAdminFixture();
    await fixture.app.ready();
    // The OpenAPI UI's own files (static assets, a catch-all) are not API routes.
    routes = routesOfTree(fixture.app.printRoutes({ commonPrefix: false }))
      .filter((r) => !/^GET \/docs\/(static\/|\*)/.test(r))
      .map(snake);
  });
  afterAll(async () => fixture?.close());

  it('reads the routes fastify registered', () => {
    expect(routes).toContain('POST /v1/authorities/{kind}/prepare');
    expect(routes).toContain('GET /v1/agents/{spiffe_id}/authorized-entries');
    expect(routes.length).toBeGreaterThan(25);
  });

  it('documents every route, and no route that does not exist', () => {
    const documented = documentedRoutes(readFileSync(REFERENCE, 'utf8'));
    const missing = routes.filter((r) => !documented.has(r));
    const extra = [...documented].filter((r) => !routes.includes(r));
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
  });
});
