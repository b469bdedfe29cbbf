import { describe, expect, it } from 'vitest';
import { isSigilError } from '../../spiffe/errors.js';
import type { HttpRouteEntry } from './model.js';
import { MAX_ROUTE_OBJECTS, parseRouteFile } from './parse.js';

const SERVICES = new Set(['web', 'web-v2', 'shadow', 'grpc-svc']);

const HEADER = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web }
spec:
  parentRefs: [{ group: "", kind: Service, name: web }]
`;

/** An HTTPRoute for parent `web` with the given rules (YAML, indented under spec). */
function route(rules: string, header = HEADER): string {
  return `${header}  rules:\n${rules.replace(/^/gm, '    ').replace(/^ {4}$/gm, '')}\n`;
}

function problems(text: string): string[] {
  try {
    parseRouteFile(text, 'routes.yaml', SERVICES);
  } catch (err) {
    if (!isSigilError(err, 'ERR_CONFIG_INVALID')) throw err;
    const [first, ...rest] = err.message.split('\n');
    expect(first).toMatch(/^routes file routes\.yaml has \d+ problems?$/);
    return rest.map((l) => l.trim());
  }
  throw new Error('expected the file to be refused');
}

function onlyProblem(text: string): string {
  const list = problems(text);
  expect(list).toHaveLength(1);
  return list[0]!;
}

function entries(text: string, parent = 'web'): readonly HttpRouteEntry[] {
  return parseRouteFile(text, 'routes.yaml', SERVICES).http.get(parent) ?? [];
}

describe('parseRouteFile: HTTPRoute fields', () => {
  it('compiles every supported field', () => {
    const table = parseRouteFile(
      `apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata:
  name: web-canary
  namespace: shop
  labels: { app: web }
  annotations: { note: "canary" }
  creationTimestamp: "2026-01-01T00:00:00Z"
  uid: 1234
  resourceVersion: "7"
  generation: 2
spec:
  parentRefs: [{ group: core, kind: Service, name: web, namespace: shop, port: 8080 }]
  rules:
    - name: canary
      matches:
        - path: { type: PathPrefix, value: /api }
          headers: [{ name: X-Canary, value: "1" }, { type: RegularExpression, name: x-user, value: "u[0-9]+" }]
          queryParams: [{ name: v, value: "2" }, { type: RegularExpression, name: q, value: "a.*" }]
          method: GET
        - path: { type: Exact, value: /health }
        - path: { type: RegularExpression, value: "/items/[0-9]+" }
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: x-env, value: canary }]
            add: [{ name: x-added, value: "yes" }]
            remove: [x-internal]
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-served-by, value: v2 }] }
        - type: URLRewrite
          urlRewrite: { hostname: web-v2.shop, path: { type: ReplaceFullPath, replaceFullPath: /v2 } }
        - type: RequestMirror
          requestMirror: { backendRef: { name: shadow, port: 80 }, percent: 10 }
        - type: RequestMirror
          requestMirror: { backendRef: { name: shadow }, fraction: { numerator: 1, denominator: 4 } }
      backendRefs:
        - { name: web, port: 80, weight: 90 }
        - { group: "", kind: Service, name: web-v2, namespace: shop, port: 80, weight: 10 }
      timeouts: { request: 10s, backendRequest: 1s500ms }
      retry: { codes: [502, 503], attempts: 2, backoff: 100ms }
`,
      'routes.yaml',
      SERVICES,
    );
    expect(table.routes).toEqual([{ kind: 'HTTPRoute', name: 'shop/web-canary', parents: ['web'] }]);
    const list = table.http.get('web')!;
    // Exact first, then the prefix, then the regular expression.
    expect(list.map((e) => e.match.path.type)).toEqual(['Exact', 'PathPrefix', 'RegularExpression']);
    const rule = list[0]!.rule;
    expect(rule.origin).toEqual({ route: 'shop/web-canary', kind: 'HTTPRoute', index: 0, name: 'canary' });
    expect(rule.requestHeaders).toEqual({
      set: [{ name: 'x-env', value: 'canary' }],
      add: [{ name: 'x-added', value: 'yes' }],
      remove: ['x-internal'],
    });
    expect(rule.responseHeaders).toEqual({
      set: [{ name: 'x-served-by', value: 'v2' }],
      add: [],
      remove: [],
    });
    expect(rule.rewrite).toEqual({
      hostname: 'web-v2.shop',
      path: { type: 'ReplaceFullPath', value: '/v2' },
    });
    expect(rule.redirect).toBeNull();
    expect(rule.mirrors).toEqual([
      { service: 'shadow', share: 0.1 },
      { service: 'shadow', share: 0.25 },
    ]);
    expect(rule.backends).toEqual([
      { service: 'web', weight: 90 },
      { service: 'web-v2', weight: 10 },
    ]);
    expect(rule.overrides).toEqual({
      timeouts: { requestMs: 10_000, backendRequestMs: 1500 },
      retry: { maxAttempts: 3, onStatuses: [502, 503], backoffMs: 100 },
    });
    const prefix = list[1]!.match;
    expect(prefix.method).toBe('GET');
    expect(prefix.headers.map((h) => h.name)).toEqual(['x-canary', 'x-user']);
    expect(prefix.queryParams.map((q) => q.name)).toEqual(['v', 'q']);
    expect(Object.isFrozen(list)).toBe(true);
    expect(Object.isFrozen(rule.backends[0])).toBe(true);
  });

  it('defaults: no matches is PathPrefix "/", weight 1, redirect 302, "0s" disables a timeout', () => {
    const [entry] = entries(route(`- backendRefs: [{ name: web-v2 }]\n  timeouts: { request: 0s }`));
    expect(entry!.match).toEqual({
      path: { type: 'PathPrefix', value: '/' },
      headers: [],
      queryParams: [],
      method: null,
    });
    expect(entry!.rule.backends).toEqual([{ service: 'web-v2', weight: 1 }]);
    expect(entry!.rule.origin.name).toBe('rules[0]');
    expect(entry!.rule.overrides).toEqual({
      timeouts: { requestMs: 0, backendRequestMs: null },
      retry: null,
    });
    const [redirect] = entries(
      route('- filters: [{ type: RequestRedirect, requestRedirect: { scheme: https, port: 8443 } }]'),
    );
    expect(redirect!.rule.redirect).toEqual({
      scheme: 'https',
      hostname: null,
      path: null,
      port: 8443,
      statusCode: 302,
    });
    expect(redirect!.rule.backends).toEqual([]);
  });

  it('reads several documents, a List, GRPCRoutes, and routes attached to several parents', () => {
    const table = parseRouteFile(
      `${route('- backendRefs: [{ name: web-v2 }]')}---
apiVersion: v1
kind: List
items:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: both, namespace: other }
    spec:
      parentRefs: [{ group: "", kind: Service, name: web }, { group: "", kind: Service, name: shadow }]
      rules: [{ backendRefs: [{ name: web }] }]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: GRPCRoute
metadata: { name: greeter }
spec:
  parentRefs: [{ group: "", kind: Service, name: grpc-svc }]
  rules:
    - matches: [{ method: { service: helloworld.Greeter, method: SayHello }, headers: [{ name: x-v, value: "2" }] }]
      filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { add: [{ name: x-a, value: b }] } }]
      backendRefs: [{ name: web-v2, weight: 3 }]
---
`,
      'routes.yaml',
      SERVICES,
    );
    expect(table.routes.map((r) => r.name)).toEqual(['default/web', 'other/both', 'default/greeter']);
    expect(table.http.get('web')).toHaveLength(2);
    expect(table.http.get('shadow')).toHaveLength(1);
    const grpc = table.grpc.get('grpc-svc')!;
    expect(grpc[0]!.match).toEqual({
      method: { type: 'Exact', service: 'helloworld.Greeter', method: 'SayHello' },
      headers: [{ type: 'Exact', name: 'x-v', value: '2' }],
    });
    expect(grpc[0]!.rule).toMatchObject({
      origin: { kind: 'GRPCRoute', route: 'default/greeter' },
      backends: [{ service: 'web-v2', weight: 3 }],
      responseHeaders: null,
    });
  });

  it('an empty file is an empty table', () => {
    const table = parseRouteFile('', 'routes.yaml', SERVICES);
    expect(table.routes).toEqual([]);
    expect(table.http.size).toBe(0);
  });
});

describe('parseRouteFile: refused fields, each named', () => {
  const cases: [string, string, string][] = [
    [
      'hostnames',
      `${HEADER}  hostnames: [web.example]\n  rules: [{ backendRefs: [{ name: web }] }]\n`,
      'HTTPRoute default/web: spec.hostnames: is not used by mesh (GAMMA) routes; match the Host header with matches[].headers',
    ],
    [
      'sectionName',
      route(
        '- backendRefs: [{ name: web }]',
        HEADER.replace('Service, name: web }', 'Service, name: web, sectionName: http }'),
      ),
      'HTTPRoute default/web: spec.parentRefs[0].sectionName: is not supported: a Service parent has no sections; use port to narrow by port',
    ],
    [
      'sessionPersistence',
      route('- backendRefs: [{ name: web }]\n  sessionPersistence: { type: Cookie }'),
      'HTTPRoute default/web: spec.rules[0].sessionPersistence: is not supported: the sidecar balances each request on its own',
    ],
    [
      'ExtensionRef',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: ExtensionRef, extensionRef: { group: x, kind: y, name: z } }]',
      ),
      'HTTPRoute default/web: spec.rules[0].filters[0].type: ExtensionRef filters are not supported: sigil-proxy has no extension resources',
    ],
    [
      'CORS',
      route('- backendRefs: [{ name: web }]\n  filters: [{ type: CORS, cors: {} }]'),
      'HTTPRoute default/web: spec.rules[0].filters[0].type: CORS filters are not supported by the sidecar: the application answers CORS itself',
    ],
    [
      'backendRef filters',
      route('- backendRefs: [{ name: web, filters: [] }]'),
      'HTTPRoute default/web: spec.rules[0].backendRefs[0].filters: per-backend filters are not supported; put the filters on the rule',
    ],
    [
      'an unknown rule field',
      route('- backendRefs: [{ name: web }]\n  colour: red'),
      'HTTPRoute default/web: spec.rules[0].colour: unknown or unsupported field (supported: name, matches, filters, backendRefs, timeouts, retry)',
    ],
    [
      'an unknown service',
      route('- backendRefs: [{ name: nope }]'),
      'HTTPRoute default/web: spec.rules[0].backendRefs[0].name: "nope" is not configured service (services: grpc-svc, shadow, web, web-v2)'.replace(
        'is not configured',
        'is not a configured',
      ),
    ],
    [
      'a cross-namespace backend',
      route('- backendRefs: [{ name: web, namespace: other }]'),
      'HTTPRoute default/web: spec.rules[0].backendRefs[0].namespace: "other" is not the route\'s namespace "default": cross-namespace backends need a ReferenceGrant, which a sidecar cannot read',
    ],
    [
      'a backend kind',
      route('- backendRefs: [{ name: web, kind: ServiceImport }]'),
      'HTTPRoute default/web: spec.rules[0].backendRefs[0].kind: must be Service (got "ServiceImport"): a sidecar routes between services, not through gateways',
    ],
    [
      'redirect with backends',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: RequestRedirect, requestRedirect: { scheme: https } }]',
      ),
      'HTTPRoute default/web: spec.rules[0].backendRefs: must be empty with a RequestRedirect filter: the proxy answers the redirect itself, so no backend would ever be used',
    ],
    [
      'no backends and no redirect',
      route('- matches: [{ path: { value: /a } }]'),
      'HTTPRoute default/web: spec.rules[0]: needs backendRefs (where to send the requests) or a RequestRedirect filter',
    ],
    [
      'redirect with rewrite',
      route(
        '- filters:\n  - { type: RequestRedirect, requestRedirect: { scheme: https } }\n  - { type: URLRewrite, urlRewrite: { hostname: x } }',
      ),
      'HTTPRoute default/web: spec.rules[0].filters: RequestRedirect and URLRewrite cannot be used together: a redirect sends nothing upstream to rewrite',
    ],
    [
      'a repeated filter type',
      route(
        '- backendRefs: [{ name: web }]\n  filters:\n  - { type: RequestHeaderModifier, requestHeaderModifier: { remove: [a] } }\n  - { type: RequestHeaderModifier, requestHeaderModifier: { remove: [b] } }',
      ),
      'HTTPRoute default/web: spec.rules[0].filters[1].type: RequestHeaderModifier is already filters[0]: a rule takes each filter type once (RequestMirror aside)',
    ],
    [
      'ReplacePrefixMatch on an Exact match',
      route(
        '- matches: [{ path: { type: Exact, value: /a } }]\n  backendRefs: [{ name: web }]\n  filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /b } } }]',
      ),
      'HTTPRoute default/web: spec.rules[0].filters: urlRewrite.path ReplacePrefixMatch needs every match of the rule to be a PathPrefix match (it replaces the matched prefix)',
    ],
    [
      'backendRequest longer than request',
      route('- backendRefs: [{ name: web }]\n  timeouts: { request: 1s, backendRequest: 2s }'),
      'HTTPRoute default/web: spec.rules[0].timeouts.backendRequest: must not be longer than request ("1s") (got "2s")',
    ],
    [
      'a duration outside GEP-2257',
      route('- backendRefs: [{ name: web }]\n  timeouts: { request: 1.5s }'),
      'HTTPRoute default/web: spec.rules[0].timeouts.request: must be a Gateway API duration: 1 to 4 parts of up to 5 digits and a unit h, m, s or ms, e.g. "10s" or "1m30s" (got "1.5s")',
    ],
    [
      'a retry code outside 400-599',
      route('- backendRefs: [{ name: web }]\n  retry: { codes: [302] }'),
      'HTTPRoute default/web: spec.rules[0].retry.codes[0]: must be a whole number from 400 to 599 (got 302)',
    ],
    [
      'too many retry attempts',
      route('- backendRefs: [{ name: web }]\n  retry: { attempts: 11 }'),
      'HTTPRoute default/web: spec.rules[0].retry.attempts: must be a whole number from 0 to 10 (got 11)',
    ],
    [
      'a weight over the maximum',
      route('- backendRefs: [{ name: web, weight: 1000001 }]'),
      'HTTPRoute default/web: spec.rules[0].backendRefs[0].weight: must be a whole number from 0 to 1000000 (got 1000001)',
    ],
    [
      'percent and fraction',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: shadow }, percent: 5, fraction: { numerator: 1 } } }]',
      ),
      'HTTPRoute default/web: spec.rules[0].filters[0].requestMirror: set percent or fraction, not both',
    ],
    [
      'a path value with "//"',
      route('- matches: [{ path: { value: /a//b } }]\n  backendRefs: [{ name: web }]'),
      'HTTPRoute default/web: spec.rules[0].matches[0].path.value: "/a//b" must not contain "//"',
    ],
    [
      'a backreference',
      route(
        '- matches: [{ path: { type: RegularExpression, value: "/(a)\\\\1" } }]\n  backendRefs: [{ name: web }]',
      ),
      'HTTPRoute default/web: spec.rules[0].matches[0].path.value: "/(a)\\\\1": backreferences are not supported (RE2 has none)',
    ],
    [
      'a nested quantifier',
      route(
        '- matches: [{ headers: [{ type: RegularExpression, name: x, value: "(a+)+" }] }]\n  backendRefs: [{ name: web }]',
      ),
      'HTTPRoute default/web: spec.rules[0].matches[0].headers[0].value: "(a+)+": repeats a group that holds a quantifier or "|" (e.g. "(a+)+"): it can take exponential time here; rewrite it without the nesting',
    ],
    [
      'a method outside the enum',
      route('- matches: [{ method: get }]\n  backendRefs: [{ name: web }]'),
      'HTTPRoute default/web: spec.rules[0].matches[0].method: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH (got "get")',
    ],
    [
      'a header value with a newline',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x, value: "a\\r\\nb: c" }] } }]',
      ),
      'HTTPRoute default/web: spec.rules[0].filters[0].requestHeaderModifier.set[0].value: must not hold control characters (CR, LF, NUL…)',
    ],
    [
      'a framing header',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { remove: [Content-Length] } }]',
      ),
      'HTTPRoute default/web: spec.rules[0].filters[0].requestHeaderModifier.remove[0]: "Content-Length" frames the message or routes it and cannot be changed here',
    ],
    [
      'the wrong apiVersion',
      route('- backendRefs: [{ name: web }]', HEADER.replace('/v1', '/v2')),
      'HTTPRoute default/web: apiVersion: must be gateway.networking.k8s.io/v1 or gateway.networking.k8s.io/v1beta1 for HTTPRoute (got "gateway.networking.k8s.io/v2")',
    ],
    [
      'a missing name',
      route('- backendRefs: [{ name: web }]', HEADER.replace('{ name: web }', '{ namespace: x }')),
      '(file) metadata.name: is required',
    ],
    [
      'a repeated route',
      `${route('- backendRefs: [{ name: web }]')}---\n${route('- backendRefs: [{ name: web }]')}`,
      'HTTPRoute default/web: metadata.name: "default/web" names another HTTPRoute in this file',
    ],
  ];
  it.each(cases)('%s', (_name, text, message) => {
    expect(onlyProblem(text)).toBe(message);
  });

  it('refuses a Gateway parent (the default kind) and a filter with the wrong settings field', () => {
    const gateway = HEADER.replace('{ group: "", kind: Service, name: web }', '{ name: web }');
    expect(problems(route('- backendRefs: [{ name: web }]', gateway))).toEqual([
      'HTTPRoute default/web: spec.parentRefs[0].group: must be "" (the core group of Service) (got "gateway.networking.k8s.io")',
      'HTTPRoute default/web: spec.parentRefs[0].kind: defaults to Gateway; a mesh route attaches to a Service: set kind: Service and group: ""',
    ]);
    expect(
      problems(
        route(
          '- backendRefs: [{ name: web }]\n  filters: [{ type: RequestHeaderModifier, responseHeaderModifier: { remove: [a] } }]',
        ),
      ),
    ).toEqual([
      'HTTPRoute default/web: spec.rules[0].filters[0].responseHeaderModifier: must not be set when type is RequestHeaderModifier',
      'HTTPRoute default/web: spec.rules[0].filters[0].requestHeaderModifier: is required when type is RequestHeaderModifier',
    ]);
  });

  it('reports every problem of a file at once', () => {
    const list = problems(
      `${route('- backendRefs: [{ name: nope }]\n  timeouts: { request: 5x }')}---\nkind: Gateway\n---\n[1, 2]\n`,
    );
    expect(list).toEqual([
      expect.stringContaining('backendRefs[0].name: "nope" is not a configured service'),
      expect.stringContaining('timeouts.request: must be a Gateway API duration'),
      '(document 2) kind: must be HTTPRoute or GRPCRoute (got "Gateway")',
      '(document 3): must be an HTTPRoute or GRPCRoute object (got [1,2])',
    ]);
  });

  it('refuses RequestMirror, timeouts and unknown filters on a GRPCRoute', () => {
    const text = `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: g }
spec:
  parentRefs: [{ group: "", kind: Service, name: grpc-svc }]
  rules:
    - matches: [{ method: { type: RegularExpression, service: "a.(b+)*" } }, { method: { type: Exact } }]
      filters:
        - { type: RequestMirror, requestMirror: { backendRef: { name: shadow } } }
        - { type: URLRewrite, urlRewrite: { hostname: x } }
      backendRefs: [{ name: web }]
      timeouts: { request: 1s }
`;
    expect(problems(text)).toEqual([
      'GRPCRoute default/g: spec.rules[0].timeouts: is not part of GRPCRoute; a gRPC call carries its own deadline (grpc-timeout)',
      'GRPCRoute default/g: spec.rules[0].matches[0].method.service: "a.(b+)*": repeats a group that holds a quantifier or "|" (e.g. "(a+)+"): it can take exponential time here; rewrite it without the nesting',
      'GRPCRoute default/g: spec.rules[0].matches[1].method: must set service, method or both (omit method to match every call)',
      'GRPCRoute default/g: spec.rules[0].filters[0].type: RequestMirror is not supported on GRPCRoute: a gRPC stream is relayed as it flows and cannot be copied to a shadow; mirror with an HTTPRoute instead',
      'GRPCRoute default/g: spec.rules[0].filters[1].type: must be one of RequestHeaderModifier, ResponseHeaderModifier (got "URLRewrite")',
    ]);
  });
});

describe('parseRouteFile: limits', () => {
  it('refuses a file over 1 MiB', () => {
    expect(onlyProblem(`# ${'x'.repeat(1024 * 1024)}\n`)).toMatch(
      /^\(file\): is \d+ bytes; a routes file is at most 1048576/,
    );
  });

  it(`refuses more than ${MAX_ROUTE_OBJECTS} routes`, () => {
    const one = route('- backendRefs: [{ name: web }]');
    const text = Array.from({ length: MAX_ROUTE_OBJECTS + 1 }, (_, i) =>
      one.replace('name: web }\n', `name: r${i} }\n`),
    ).join('---\n');
    expect(onlyProblem(text)).toBe('(file): has 1001 routes; a routes file holds at most 1000');
  });

  it('refuses more than 16 rules, 64 matches, 16 header matches and 16 backends', () => {
    const many = (n: number, item: string) => `[${Array.from({ length: n }, () => item).join(', ')}]`;
    expect(
      onlyProblem(
        route(`${many(17, '{ backendRefs: [{ name: web }] }').replace(/^/, '')}`).replace(
          'rules:\n    [',
          'rules: [',
        ),
      ),
    ).toBe('HTTPRoute default/web: spec.rules: must have at most 16 items (got 17)');
    expect(
      onlyProblem(route(`- matches: ${many(65, '{ method: GET }')}\n  backendRefs: [{ name: web }]`)),
    ).toBe('HTTPRoute default/web: spec.rules[0].matches: must have at most 64 items (got 65)');
    const headers = `[${Array.from({ length: 17 }, (_, i) => `{ name: h${i}, value: v }`).join(', ')}]`;
    expect(onlyProblem(route(`- matches: [{ headers: ${headers} }]\n  backendRefs: [{ name: web }]`))).toBe(
      'HTTPRoute default/web: spec.rules[0].matches[0].headers: must have at most 16 items (got 17)',
    );
    expect(onlyProblem(route(`- backendRefs: ${many(17, '{ name: web }')}`))).toBe(
      'HTTPRoute default/web: spec.rules[0].backendRefs: must have at most 16 items (got 17)',
    );
  });

  it('refuses a regular expression over 1024 characters', () => {
    expect(
      onlyProblem(
        route(
          `- matches: [{ path: { type: RegularExpression, value: "/${'a'.repeat(1024)}" } }]\n  backendRefs: [{ name: web }]`,
        ),
      ),
    ).toMatch(/must be at most 1024 characters \(got 1025\)$/);
  });
});

describe('docs/proxy-routes.md', () => {
  it('its example config and canary file load, and route as the doc says', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../../docs/proxy-routes.md', import.meta.url), 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const { checkProxyConfig } = await import('../config.js');
    const { parse } = await import('yaml');
    const config = checkProxyConfig(parse(blocks[0]!), '/etc/sigil/proxy.yaml');
    expect(config.routesFile).toBe('/etc/sigil/routes.yaml');
    const table = parseRouteFile(blocks[1]!, 'routes.yaml', new Set(config.services.map((s) => s.name)));
    const { explainHttp } = await import('./explain.js');
    const e = explainHttp(table, 'web', { method: 'GET', target: '/api/x', headers: [] });
    expect(e.backends.map((b) => `${b.service} ${b.sharePercent}%`)).toEqual(['web 90%', 'web-v2 10%']);
    expect(
      explainHttp(table, 'web', { method: 'GET', target: '/', headers: ['X-Canary', '1'] }).rule?.name,
    ).toBe('force-canary');
  });
});

describe('parseRouteFile: more fields and checks', () => {
  it('compiles a full redirect, a GRPCRoute regular expression match and header modifiers on gRPC', () => {
    const [redirect] = entries(
      route(
        '- matches: [{ path: { value: /old } }]\n  filters: [{ type: RequestRedirect, requestRedirect: { scheme: https, hostname: example.com, port: 8443, statusCode: 308, path: { type: ReplacePrefixMatch, replacePrefixMatch: /new } } }]',
      ),
    );
    expect(redirect!.rule.redirect).toEqual({
      scheme: 'https',
      hostname: 'example.com',
      port: 8443,
      statusCode: 308,
      path: { type: 'ReplacePrefixMatch', value: '/new' },
    });
    const grpc = parseRouteFile(
      `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: g }
status: { parents: [] }
spec:
  parentRefs: [{ group: "", kind: Service, name: grpc-svc }]
  rules:
    - matches: [{ method: { type: RegularExpression, method: "(?i)get.*" }, headers: [{ type: RegularExpression, name: x-v, value: "[0-9]" }] }]
      filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { remove: [x-internal] } }]
      backendRefs: [{ name: web }]
`,
      'routes.yaml',
      SERVICES,
    ).grpc.get('grpc-svc')!;
    const method = grpc[0]!.match.method!;
    expect(method.type).toBe('RegularExpression');
    if (method.type !== 'RegularExpression') return;
    expect(method.service).toBeNull();
    expect(method.methodSource).toBe('(?i)get.*');
    expect(method.method!.test('GetUser')).toBe(true);
    expect(grpc[0]!.rule.responseHeaders).toEqual({ set: [], add: [], remove: ['x-internal'] });
  });

  it('accepts backendRequest with a disabled request timeout, and a fraction with the default denominator', () => {
    const [entry] = entries(
      route(
        '- backendRefs: [{ name: web }]\n  timeouts: { request: 0s, backendRequest: 1h }\n  filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: shadow }, fraction: { numerator: 3 } } }]',
      ),
    );
    expect(entry!.rule.overrides.timeouts).toEqual({ requestMs: 0, backendRequestMs: 3_600_000 });
    expect(entry!.rule.mirrors).toEqual([{ service: 'shadow', share: 0.03 }]);
  });

  const more: [string, string, string[]][] = [
    [
      'no parentRefs',
      `${HEADER.split('spec:')[0]}spec:\n  rules: [{ backendRefs: [{ name: web }] }]\n`,
      [
        'HTTPRoute default/web: spec.parentRefs: is required: name the Service whose traffic this route takes ({kind: Service, group: "", name: S})',
      ],
    ],
    [
      'no rules',
      HEADER,
      ['HTTPRoute default/web: spec.rules: is required (at least one rule with backendRefs)'],
    ],
    [
      'no spec',
      HEADER.split('spec:')[0]!,
      ['HTTPRoute default/web: spec: is required (parentRefs and rules)'],
    ],
    [
      'a repeated parent',
      route(
        '- backendRefs: [{ name: web }]',
        HEADER.replace('name: web }]', 'name: web }, { group: "", kind: Service, name: web }]'),
      ),
      ['HTTPRoute default/web: spec.parentRefs[1].name: "web" is already a parent of this route'],
    ],
    [
      'repeated rule names',
      route('- { name: a, backendRefs: [{ name: web }] }\n- { name: a, backendRefs: [{ name: web }] }'),
      ['HTTPRoute default/web: spec.rules[1].name: "a" names another rule of this route'],
    ],
    [
      'a header matched twice',
      route(
        '- matches: [{ headers: [{ name: X-A, value: "1" }, { name: x-a, value: "2" }] }]\n  backendRefs: [{ name: web }]',
      ),
      [
        'HTTPRoute default/web: spec.rules[0].matches[0].headers[1].name: "x-a" repeats spec.rules[0].matches[0].headers[0] (names are case-insensitive)',
      ],
    ],
    [
      'a header set twice',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: X-A, value: "1" }], remove: [x-a] } }]',
      ),
      [
        'HTTPRoute default/web: spec.rules[0].filters[0].requestHeaderModifier.remove[0]: "x-a" is already named at spec.rules[0].filters[0].requestHeaderModifier.set[0].name (names are case-insensitive)',
      ],
    ],
    [
      'an empty header modifier',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: {} }]',
      ),
      [
        'HTTPRoute default/web: spec.rules[0].filters[0].responseHeaderModifier: sets, adds and removes nothing: give set, add or remove, or drop the filter',
      ],
    ],
    [
      'a mirror of 0%',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: shadow }, percent: 0 } }]',
      ),
      [
        'HTTPRoute default/web: spec.rules[0].filters[0].requestMirror: mirrors nothing (0%): remove the filter to stop mirroring',
      ],
    ],
    [
      'a fraction over 1',
      route(
        '- backendRefs: [{ name: web }]\n  filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: shadow }, fraction: { numerator: 3, denominator: 2 } } }]',
      ),
      [
        'HTTPRoute default/web: spec.rules[0].filters[0].requestMirror.fraction: numerator must not exceed denominator (got 3/2)',
      ],
    ],
    [
      'a backoff of 0s and a timeout over 596h',
      route('- backendRefs: [{ name: web }]\n  retry: { backoff: 0s }\n  timeouts: { request: 600h }'),
      [
        'HTTPRoute default/web: spec.rules[0].timeouts.request: must be at most 596h (got "600h")',
        "HTTPRoute default/web: spec.rules[0].retry.backoff: must be longer than 0s; omit it to keep the service's backoff",
      ],
    ],
    [
      'a bad redirect',
      route(
        '- filters: [{ type: RequestRedirect, requestRedirect: { scheme: ftp, hostname: "Web:80", statusCode: 304 } }]',
      ),
      [
        'HTTPRoute default/web: spec.rules[0].filters[0].requestRedirect.scheme: must be one of http, https (got "ftp")',
        'HTTPRoute default/web: spec.rules[0].filters[0].requestRedirect.hostname: "Web:80" is not a lowercase DNS name (RFC 1123), without port or wildcard',
        'HTTPRoute default/web: spec.rules[0].filters[0].requestRedirect.statusCode: must be one of 301, 302, 303, 307, 308 (got 304)',
      ],
    ],
    [
      'bad metadata',
      route(
        '- backendRefs: [{ name: web }]',
        HEADER.replace(
          '{ name: web }',
          '{ name: web, namespace: Shop, labels: { a: 1 }, creationTimestamp: yesterday }',
        ),
      ),
      [
        '(file) metadata.namespace: must be a lowercase DNS label of up to 63 characters (got "Shop")',
        '(file) metadata.labels: must be a mapping of strings',
        '(file) metadata.creationTimestamp: must be an RFC 3339 time such as 2026-01-31T12:00:00Z (got "yesterday")',
      ],
    ],
    [
      'invalid YAML',
      'kind: [',
      [
        '(file): is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 8',
      ],
    ],
  ];
  it.each(more)('refuses %s', (_name, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });
});
