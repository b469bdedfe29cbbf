import { describe, expect, it } from 'vitest';
import {
  modifyPath,
  modifyRequestHeaders,
  modifyResponseHeaders,
  redirectResponse,
  rewriteHost,
  rewriteTarget,
} from './filters.js';
import type { HeaderModifier, HttpMatch, RequestRedirect } from './model.js';

const prefixMatch = (value: string): HttpMatch => ({
  path: { type: 'PathPrefix', value },
  headers: [],
  queryParams: [],
  method: null,
});
const exactMatch: HttpMatch = {
  path: { type: 'Exact', value: '/a' },
  headers: [],
  queryParams: [],
  method: null,
};

const MOD: HeaderModifier = {
  set: [{ name: 'X-Env', value: 'canary' }],
  add: [{ name: 'x-tag', value: 'b' }],
  remove: ['X-Secret'],
};

describe('header modifiers', () => {
  it('request: remove, then set (replacing every field of the name), then add; input untouched', () => {
    const input = ['Host', 'web', 'x-env', 'prod', 'x-secret', 's', 'X-ENV', 'again', 'x-tag', 'a'];
    const copy = [...input];
    expect(modifyRequestHeaders(MOD, input)).toEqual([
      'Host',
      'web',
      'x-tag',
      'a',
      'X-Env',
      'canary',
      'x-tag',
      'b',
    ]);
    expect(input).toEqual(copy);
  });

  it('response: the same on raw buffers', () => {
    const raw = ['content-type', 'text/plain', 'X-Secret', 'v', 'x-env', 'p'].map((t) => Buffer.from(t));
    expect(modifyResponseHeaders(MOD, raw).map((b) => b.toString())).toEqual([
      'content-type',
      'text/plain',
      'X-Env',
      'canary',
      'x-tag',
      'b',
    ]);
  });
});

describe('URLRewrite', () => {
  it('ReplacePrefixMatch follows the Gateway API table', () => {
    const table: [string, string, string, string][] = [
      ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
      ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
      ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
      ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
      ['/foo', '/foo', '/xyz', '/xyz'],
      ['/foo/', '/foo', '/xyz', '/xyz/'],
      ['/foo/bar', '/foo', '', '/bar'],
      ['/foo/', '/foo', '', '/'],
      ['/foo', '/foo', '', '/'],
      ['/foo/', '/foo', '/', '/'],
      ['/foo', '/foo', '/', '/'],
      ['/anything', '/', '/xyz', '/xyz/anything'],
    ];
    for (const [path, prefix, replacement, expected] of table) {
      expect(
        modifyPath({ type: 'ReplacePrefixMatch', value: replacement }, prefixMatch(prefix), path),
        `${path} ${prefix} ${replacement}`,
      ).toBe(expected);
    }
  });

  it('rewriteTarget keeps the query; ReplaceFullPath replaces the whole path; no path rewrite keeps the target', () => {
    const prefix = {
      rewrite: { hostname: null, path: { type: 'ReplacePrefixMatch', value: '/v2' } },
    } as const;
    expect(rewriteTarget(prefix, prefixMatch('/api'), '/api/items?x=1&y')).toBe('/v2/items?x=1&y');
    const full = { rewrite: { hostname: null, path: { type: 'ReplaceFullPath', value: '/new' } } } as const;
    expect(rewriteTarget(full, exactMatch, '/a?q')).toBe('/new?q');
    expect(rewriteTarget({ rewrite: { hostname: 'h', path: null } }, exactMatch, '/a?q')).toBe('/a?q');
    expect(rewriteTarget({ rewrite: null }, exactMatch, '/a')).toBe('/a');
  });

  it('rewriteHost replaces the Host field, or adds one', () => {
    expect(rewriteHost(['Host', 'old:8080', 'a', 'b'], 'new')).toEqual(['Host', 'new', 'a', 'b']);
    expect(rewriteHost(['a', 'b'], 'new')).toEqual(['a', 'b', 'host', 'new']);
  });
});

describe('redirectResponse', () => {
  const redirect = (r: Partial<RequestRedirect>): RequestRedirect => ({
    scheme: null,
    hostname: null,
    path: null,
    port: null,
    statusCode: 302,
    ...r,
  });

  it('keeps scheme, host, port, path and query when unset', () => {
    expect(redirectResponse(redirect({}), exactMatch, '/a?q=1', 'web:8080', 'http')).toEqual({
      status: 302,
      location: 'http://web:8080/a?q=1',
    });
    expect(redirectResponse(redirect({ statusCode: 301 }), exactMatch, '/a', 'web', 'http').location).toBe(
      'http://web/a',
    );
  });

  it('a new scheme without a port takes its well-known port, left out of the Location', () => {
    expect(
      redirectResponse(redirect({ scheme: 'https' }), exactMatch, '/a', 'web:8080', 'http').location,
    ).toBe('https://web/a');
    expect(
      redirectResponse(redirect({ scheme: 'https', port: 8443 }), exactMatch, '/a', 'web', 'http').location,
    ).toBe('https://web:8443/a');
    expect(
      redirectResponse(redirect({ scheme: 'http', port: 80 }), exactMatch, '/a', 'web:9', 'http').location,
    ).toBe('http://web/a');
  });

  it('hostname and path modifiers', () => {
    const r = redirect({
      hostname: 'example.com',
      path: { type: 'ReplacePrefixMatch', value: '/new' },
      statusCode: 308,
    });
    expect(redirectResponse(r, prefixMatch('/old'), '/old/x?y', 'web:8080', 'http')).toEqual({
      status: 308,
      location: 'http://example.com:8080/new/x?y',
    });
    expect(
      redirectResponse(
        redirect({ path: { type: 'ReplaceFullPath', value: '/z' } }),
        exactMatch,
        '/a?b',
        '[::1]:81',
        'http',
      ).location,
    ).toBe('http://[::1]:81/z?b');
  });

  it('without a Host header or hostname, the Location is the path', () => {
    expect(
      redirectResponse(redirect({ scheme: 'https' }), exactMatch, '/a?b', undefined, 'http').location,
    ).toBe('/a?b');
  });
});
