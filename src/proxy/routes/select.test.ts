import { describe, expect, it } from 'vitest';
import { fixedRandom, seededRandom } from '../../spiffe/seeded-random.test-support.js';
import type { HttpRouteEntry, RouteRequest } from './model.js';
import { parseRouteFile } from './parse.js';
import {
  headerValue,
  matchesPath,
  pickBackend,
  queryValue,
  selectGrpcRoute,
  selectHttpRoute,
} from './select.js';

const SERVICES = new Set(['web', 'a', 'b', 'c', 'd', 'e', 'f']);

/** HTTPRoute objects `name: rules` for parent web; `meta` adds metadata fields. */
function table(routes: { name: string; rules: string; meta?: string }[]): readonly HttpRouteEntry[] {
  const text = routes
    .map(
      (r) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${r.name}${r.meta ? `, ${r.meta}` : ''} }
spec:
  parentRefs: [{ group: "", kind: Service, name: web }]
  rules: ${r.rules}
`,
    )
    .join('---\n');
  return parseRouteFile(text, 'routes.yaml', SERVICES).http.get('web') ?? [];
}

function req(target: string, headers: string[] = [], method = 'GET'): RouteRequest {
  return { method, target, headers };
}

/** The backend service of the entry the request takes (each test rule has one backend). */
function backendOf(entries: readonly HttpRouteEntry[], request: RouteRequest): string | null {
  return selectHttpRoute(entries, request)?.rule.backends[0]?.service ?? null;
}

describe('matchesPath', () => {
  it('PathPrefix matches element by element and ignores a trailing "/" of the prefix', () => {
    const abc = { type: 'PathPrefix', value: '/abc' } as const;
    for (const path of ['/abc', '/abc/', '/abc/def']) expect(matchesPath(abc, path)).toBe(true);
    expect(matchesPath(abc, '/abcd')).toBe(false);
    expect(matchesPath(abc, '/ab')).toBe(false);
    const slash = { type: 'PathPrefix', value: '/abc/' } as const;
    for (const path of ['/abc', '/abc/', '/abc/def']) expect(matchesPath(slash, path)).toBe(true);
    expect(matchesPath(slash, '/abcd')).toBe(false);
    expect(matchesPath({ type: 'PathPrefix', value: '/' }, '*')).toBe(true);
  });

  it('Exact compares the raw path; RegularExpression matches the whole path', () => {
    expect(matchesPath({ type: 'Exact', value: '/a%2Fb' }, '/a%2Fb')).toBe(true);
    expect(matchesPath({ type: 'Exact', value: '/a%2Fb' }, '/a/b')).toBe(false);
    const [entry] = table([
      {
        name: 'r',
        rules:
          '[{ matches: [{ path: { type: RegularExpression, value: "/v[0-9]+" } }], backendRefs: [{ name: a }] }]',
      },
    ]);
    expect(matchesPath(entry!.match.path, '/v12')).toBe(true);
    expect(matchesPath(entry!.match.path, '/v12/x')).toBe(false);
    expect(matchesPath(entry!.match.path, '/x/v12')).toBe(false);
  });
});

describe('selectHttpRoute: Gateway API precedence', () => {
  it('Exact over PathPrefix, and the longest prefix first, whatever the order written', () => {
    const entries = table([
      {
        name: 'r',
        rules: `[{ matches: [{ path: { value: / } }], backendRefs: [{ name: a }] },
          { matches: [{ path: { value: /foo } }], backendRefs: [{ name: b }] },
          { matches: [{ path: { value: /foo/bar } }], backendRefs: [{ name: c }] },
          { matches: [{ path: { type: Exact, value: /foo } }], backendRefs: [{ name: d }] },
          { matches: [{ path: { type: RegularExpression, value: "/foo.*" } }], backendRefs: [{ name: e }] }]`,
      },
    ]);
    expect(backendOf(entries, req('/foo'))).toBe('d');
    expect(backendOf(entries, req('/foo/'))).toBe('b');
    expect(backendOf(entries, req('/foo/bar/baz?x=1'))).toBe('c');
    // Every PathPrefix, "/" included, is tried before a regular expression (our choice: the spec leaves it open).
    expect(backendOf(entries, req('/foobar'))).toBe('a');
    expect(
      backendOf(
        entries.filter((e) => e.match.path.value !== '/'),
        req('/foobar'),
      ),
    ).toBe('e');
    expect(backendOf(entries, req('/other'))).toBe('a');
  });

  it('then a method match, then more header matches, then more query matches', () => {
    const entries = table([
      {
        name: 'r',
        rules: `[{ matches: [{ path: { value: /api } }], backendRefs: [{ name: a }] },
          { matches: [{ path: { value: /api }, queryParams: [{ name: v, value: "2" }] }], backendRefs: [{ name: b }] },
          { matches: [{ path: { value: /api }, headers: [{ name: x-canary, value: "1" }] }], backendRefs: [{ name: c }] },
          { matches: [{ path: { value: /api }, headers: [{ name: x-canary, value: "1" }, { name: x-team, value: t }] }], backendRefs: [{ name: d }] },
          { matches: [{ path: { value: /api }, method: POST }], backendRefs: [{ name: e }] }]`,
      },
    ]);
    const both = ['X-Canary', '1', 'x-team', 't'];
    expect(backendOf(entries, req('/api?v=2', both, 'POST'))).toBe('e');
    expect(backendOf(entries, req('/api?v=2', both))).toBe('d');
    expect(backendOf(entries, req('/api?v=2', ['x-canary', '1']))).toBe('c');
    expect(backendOf(entries, req('/api?v=2'))).toBe('b');
    expect(backendOf(entries, req('/api?v=3'))).toBe('a');
  });

  it('ties across routes: the oldest route, then namespace/name; within a route the first rule', () => {
    const rules = (backend: string) =>
      `[{ matches: [{ path: { value: /x } }], backendRefs: [{ name: ${backend} }] }, { matches: [{ path: { value: /x } }], backendRefs: [{ name: f }] }]`;
    const aged = table([
      { name: 'young', rules: rules('a'), meta: 'creationTimestamp: "2026-02-01T00:00:00Z"' },
      { name: 'old', rules: rules('b'), meta: 'creationTimestamp: "2026-01-01T00:00:00Z"' },
    ]);
    expect(backendOf(aged, req('/x'))).toBe('b');
    const named = table([
      { name: 'zeta', rules: rules('a') },
      { name: 'alpha', rules: rules('b'), meta: 'namespace: zz' },
      { name: 'beta', rules: rules('c') },
    ]);
    // default/beta < default/zeta < zz/alpha
    expect(backendOf(named, req('/x'))).toBe('c');
    expect(named.map((e) => `${e.rule.origin.route}#${e.rule.origin.index}`)).toEqual([
      'default/beta#0',
      'default/beta#1',
      'default/zeta#0',
      'default/zeta#1',
      'zz/alpha#0',
      'zz/alpha#1',
    ]);
  });

  it('returns null when nothing matches', () => {
    const entries = table([
      {
        name: 'r',
        rules: '[{ matches: [{ path: { type: Exact, value: /only } }], backendRefs: [{ name: a }] }]',
      },
    ]);
    expect(selectHttpRoute(entries, req('/other'))).toBeNull();
    expect(selectHttpRoute([], req('/'))).toBeNull();
  });

  it('headers: case-insensitive names, exact values, regular expressions on the whole value', () => {
    const entries = table([
      {
        name: 'r',
        rules: `[{ matches: [{ headers: [{ type: RegularExpression, name: X-User, value: "u[0-9]+" }] }], backendRefs: [{ name: a }] },
          { backendRefs: [{ name: b }] }]`,
      },
    ]);
    expect(backendOf(entries, req('/', ['x-user', 'u42']))).toBe('a');
    expect(backendOf(entries, req('/', ['X-USER', 'u42x']))).toBe('b');
    expect(backendOf(entries, req('/', []))).toBe('b');
  });
});

describe('headerValue and queryValue', () => {
  it('joins a repeated header with ","', () => {
    expect(headerValue(['A', '1', 'b', '2', 'a', '3'], 'a')).toBe('1,3');
    expect(headerValue(['b', '2'], 'a')).toBeUndefined();
  });

  it('reads the first occurrence of a query parameter, raw, among the first 64', () => {
    const t = '/p?a=1&b=&c&a=2&bb=x%20y';
    const q = t.indexOf('?');
    expect(queryValue(t, q, 'a')).toBe('1');
    expect(queryValue(t, q, 'b')).toBe('');
    expect(queryValue(t, q, 'c')).toBe('');
    expect(queryValue(t, q, 'bb')).toBe('x%20y');
    expect(queryValue(t, q, 'd')).toBeUndefined();
    expect(queryValue('/p', -1, 'a')).toBeUndefined();
    const many = `/p?${Array.from({ length: 64 }, (_, i) => `k${i}=v`).join('&')}&late=1`;
    expect(queryValue(many, many.indexOf('?'), 'k63')).toBe('v');
    expect(queryValue(many, many.indexOf('?'), 'late')).toBeUndefined();
  });
});

describe('selectGrpcRoute', () => {
  const text = `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: g }
spec:
  parentRefs: [{ group: "", kind: Service, name: web }]
  rules:
    - backendRefs: [{ name: a }]
    - matches: [{ method: { method: SayHello } }]
      backendRefs: [{ name: b }]
    - matches: [{ method: { service: helloworld.Greeter } }]
      backendRefs: [{ name: c }]
    - matches: [{ method: { service: helloworld.Greeter, method: SayHello } }]
      backendRefs: [{ name: d }]
    - matches: [{ method: { service: helloworld.Greeter, method: SayHello }, headers: [{ name: x-v, value: "2" }] }]
      backendRefs: [{ name: e }]
    - matches: [{ method: { type: RegularExpression, service: "helloworld\\\\..*", method: "Say.*" } }]
      backendRefs: [{ name: f }]
`;
  const entries = parseRouteFile(text, 'routes.yaml', SERVICES).grpc.get('web')!;
  const pick = (service: string, method: string, headers: string[] = []) =>
    selectGrpcRoute(entries, service, method, headers)?.rule.backends[0]?.service;

  it('longer service match, then longer method match, then more headers', () => {
    expect(pick('helloworld.Greeter', 'SayHello', ['X-V', '2'])).toBe('e');
    expect(pick('helloworld.Greeter', 'SayHello')).toBe('d');
    expect(pick('helloworld.Greeter', 'Other')).toBe('c');
    // The regular expression's service pattern (12 characters) is shorter than helloworld.Greeter.
    expect(pick('helloworld.Other', 'SayBye')).toBe('f');
    expect(pick('other.Svc', 'SayHello')).toBe('b');
    expect(pick('other.Svc', 'Nope')).toBe('a');
  });
});

describe('pickBackend', () => {
  it('splits within 1% of the weights over 10,000 picks', () => {
    const random = seededRandom(12);
    const backends = [
      { service: 'a', weight: 90 },
      { service: 'b', weight: 10 },
      { service: 'c', weight: 0 },
    ];
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const s = pickBackend(backends, random)!;
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    expect(Math.abs(counts.get('a')! / 10_000 - 0.9)).toBeLessThan(0.01);
    expect(Math.abs(counts.get('b')! / 10_000 - 0.1)).toBeLessThan(0.01);
    expect(counts.get('c')).toBeUndefined();
  });

  it('maps the draw onto the weights in order; all weights 0 is null; one backend needs no draw', () => {
    const backends = [
      { service: 'a', weight: 1 },
      { service: 'b', weight: 3 },
    ];
    expect(pickBackend(backends, fixedRandom(0.2))).toBe('a');
    expect(pickBackend(backends, fixedRandom(0.25))).toBe('b');
    expect(pickBackend(backends, fixedRandom(0.999999999999))).toBe('b');
    expect(pickBackend([{ service: 'a', weight: 0 }], fixedRandom(0.5))).toBeNull();
    expect(pickBackend([], fixedRandom(0.5))).toBeNull();
    const never = () => {
      throw new Error('no draw expected');
    };
    expect(
      pickBackend(
        [
          { service: 'a', weight: 0 },
          { service: 'b', weight: 5 },
        ],
        never,
      ),
    ).toBe('b');
  });
});
