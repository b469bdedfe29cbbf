import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { runCaptured } from '../command-flags.test-support.js';
import { routeCommand } from './check-cli.js';

const ROUTES = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web-canary, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: web }]
  rules:
    - name: force-canary
      matches: [{ path: { value: /api }, headers: [{ name: x-canary, value: "1" }] }]
      filters:
        - type: URLRewrite
          urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /v2/api } }
        - type: RequestHeaderModifier
          requestHeaderModifier: { set: [{ name: x-env, value: canary }], remove: [x-debug] }
      backendRefs: [{ name: web-v2 }]
      timeouts: { request: 5s }
      retry: { attempts: 2, codes: [503] }
    - matches: [{ path: { value: /api } }]
      filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: shadow }, percent: 5 } }]
      backendRefs: [{ name: web, weight: 90 }, { name: web-v2, weight: 10 }]
    - matches: [{ path: { type: Exact, value: /old } }]
      filters: [{ type: RequestRedirect, requestRedirect: { scheme: https, path: { type: ReplaceFullPath, replaceFullPath: /new } } }]
    - matches: [{ path: { type: Exact, value: /off } }]
      backendRefs: [{ name: web, weight: 0 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: greeter }
spec:
  parentRefs: [{ group: "", kind: Service, name: web }]
  rules:
    - matches: [{ method: { service: helloworld.Greeter, method: SayHello } }]
      backendRefs: [{ name: web-v2 }]
`;

const service = (name: string) => `  - name: ${name}
    server_ids: [spiffe://example.org/${name}]
    endpoints: [{ address: 127.0.0.1:9000 }]
`;

let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-route-cli-'));
  writeFileSync(file('routes.yaml'), ROUTES);
  mkdirSync(file('conf'));
  writeFileSync(
    file('conf/proxy.yaml'),
    `routes_file: ../routes.yaml
outbound: [{ name: web-out, listen: 127.0.0.1:16001, service: web }]
services:
${service('web')}${service('web-v2')}${service('shadow')}${service('other')}`,
  );
  writeFileSync(
    file('conf/no-routes.yaml'),
    `outbound: [{ name: o, listen: 127.0.0.1:16001, service: web }]\nservices:\n${service('web')}`,
  );
  writeFileSync(
    file('broken.yaml'),
    ROUTES.replace('name: shadow }', 'name: shadow }, fraction: { numerator: 1 }'),
  );
  writeFileSync(
    file('two-parents.yaml'),
    `${ROUTES}---\n${ROUTES.split('---')[0]!.replace('name: web }]', 'name: other }]').replace('web-canary', 'other')}`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (...args: string[]) => runCaptured(routeCommand, args);

const check = (...args: string[]) => run('check', '--config', file('conf/proxy.yaml'), ...args);

describe('route check', () => {
  it('prints the rule, the matched condition, the filters and the backend a header forces, exit 0', async () => {
    const r = await check('--path', '/api/items?x=1', '-H', 'X-Canary: 1', '-H', 'x-debug: yes');
    expect(r).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        'service web: HTTPRoute shop/web-canary, rule force-canary (rules[0])',
        '  matched: path PathPrefix "/api", header x-canary Exact "1"',
        '  path rewritten to: /v2/api/items?x=1',
        '  request header: remove x-debug',
        '  request header: set x-env: canary',
        '  backends:',
        '    web-v2  weight 1  100%',
        "  timeouts: request 5000ms, backendRequest service's",
        "  retry: 3 tries in all, on 503, backoff service's",
        '',
      ].join('\n'),
    });
  });

  it('prints a weighted split with shares, and the mirrors', async () => {
    const r = await check('--path', '/api/x');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'service web: HTTPRoute shop/web-canary, rule rules[1] (rules[1])',
        '  matched: path PathPrefix "/api"',
        '  backends:',
        '    web     weight 90  90%',
        '    web-v2  weight 10  10%',
        '  mirror: shadow (5% of matching requests)',
        '',
      ].join('\n'),
    );
  });

  it('prints a redirect, and the 500 of a rule whose weights are all 0', async () => {
    const redirect = await check('--path', '/old?q=1', '-H', 'host: web:8080');
    expect(redirect.code).toBe(0);
    expect(redirect.stdout).toContain('  redirect: 302 https://web/new?q=1\n');
    const off = await check('--path', '/off', '--method', 'POST');
    expect(off.stdout).toContain('  backends: every weight is 0: the proxy answers 500\n');
  });

  it('no route: 404, exit 1', async () => {
    const r = await check('--path', '/elsewhere');
    expect(r).toEqual({ code: 1, stdout: 'service web: no route matches: 404\n', stderr: '' });
  });

  it('a service without routes sends everything to itself', async () => {
    const r = await check('--path', '/x', '--service', 'other');
    expect(r).toEqual({
      code: 0,
      stdout: 'service other has no routes: everything goes to other\n',
      stderr: '',
    });
  });

  it('checks a gRPC call against the GRPCRoutes', async () => {
    const r = await check('--grpc', 'helloworld.Greeter/SayHello');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('service web: GRPCRoute default/greeter, rule rules[0] (rules[0])\n');
    expect(r.stdout).toContain('  matched: method Exact helloworld.Greeter/SayHello\n');
    expect((await check('--grpc', 'helloworld.Greeter/Other')).code).toBe(1);
  });

  it('prints JSON with --output json', async () => {
    const r = await check('--path', '/api/x', '--output', 'json');
    expect(JSON.parse(r.stdout)).toMatchObject({
      service: 'web',
      routed: true,
      rule: {
        route: 'shop/web-canary',
        kind: 'HTTPRoute',
        index: 1,
        name: 'rules[1]',
        match: 'path PathPrefix "/api"',
      },
      status: null,
      backends: [
        { service: 'web', weight: 90, share_percent: 90 },
        { service: 'web-v2', weight: 10, share_percent: 10 },
      ],
      mirrors: [{ service: 'shadow', percent: 5 }],
    });
  });

  it('prints only snake_case keys in JSON, whatever the route does', async () => {
    const keysOf = (value: unknown): string[] =>
      Array.isArray(value)
        ? value.flatMap(keysOf)
        : value !== null && typeof value === 'object'
          ? Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)])
          : [];
    const requests = [
      ['--path', '/api/x', '-H', 'x-canary: 1'],
      ['--path', '/api/x'],
      ['--path', '/old'],
      ['--path', '/off'],
      ['--grpc', 'helloworld.Greeter/SayHello'],
    ];
    const keys: string[] = [];
    for (const args of requests)
      keys.push(...keysOf(JSON.parse((await check(...args, '--output', 'json')).stdout)));
    expect(keys).toEqual(expect.arrayContaining(['share_percent', 'rewritten_target', 'request_headers']));
    expect(keys.filter((k) => !/^[a-z0-9]+(_[a-z0-9]+)*$/.test(k))).toEqual([]);
  });

  it('reads a routes file alone, its services being every name it mentions', async () => {
    const r = await run('check', '--config', file('routes.yaml'), '--path', '/api/x');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('    web-v2  weight 10  10%\n');
  });

  it('needs --service when the file routes several services', async () => {
    const r = await run('check', '--config', file('two-parents.yaml'), '--path', '/api/x');
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'sigil-proxy route check: the file routes several services (other, web): pick one with --service\n',
    });
    const picked = await run(
      'check',
      '--config',
      file('two-parents.yaml'),
      '--path',
      '/api/x',
      '--service',
      'other',
    );
    expect(picked.stdout).toContain('service other: HTTPRoute shop/other');
  });

  it('usage and config errors exit 2 with the reason', async () => {
    const cases: [string[], string][] = [
      [['--path', '/x', '--output', 'yaml'], '--output: must be text or json (got "yaml")'],
      [['--path', 'x'], '--path: must start with "/" (got "x")'],
      [[], 'missing --path /x (or --grpc SERVICE/METHOD)'],
      [['--path', '/x', '-H', 'nocolon'], '--header: must be "name: value" (got "nocolon")'],
      [
        ['--path', '/x', '--method', 'get'],
        '--method: must be an uppercase HTTP method such as GET (got "get")',
      ],
      [
        ['--path', '/x', '--service', 'nope'],
        '--service: "nope" is not a service (services: other, shadow, web, web-v2)',
      ],
      [['--grpc', 'nope'], '--grpc: must be SERVICE/METHOD, e.g. helloworld.Greeter/SayHello (got "nope")'],
      [['--path', '/x', '--bogus'], 'unknown flag --bogus'],
      [['--paht', '/x'], 'unknown flag --paht; did you mean --path?'],
    ];
    for (const [args, message] of cases) {
      const r = await check(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
    }
    const missing = await run('check', '--path', '/x');
    expect(missing.stderr).toBe('sigil-proxy route check: missing --config FILE\n');
    const broken = await run('check', '--config', file('broken.yaml'), '--path', '/x');
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('requestMirror: set percent or fraction, not both');
    const noRoutes = await run('check', '--config', file('conf/no-routes.yaml'), '--path', '/x');
    expect(noRoutes.stderr).toContain('sets no routes_file (and is not a routes file)');
  });

  it('is wired into sigil-proxy, with help', async () => {
    let stdout = '';
    const io = { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: () => true }, env: {} };
    expect(await main(['route', 'check', '--help'], io)).toBe(0);
    expect(stdout).toContain('Usage: sigil-proxy route check --config FILE --path /x [flags]');
    stdout = '';
    expect(await main(['--help'], io)).toBe(0);
    expect(stdout).toContain('route check --config FILE --path /x');
    expect(
      await main(['route', 'check', '--config', file('conf/proxy.yaml'), '--path', '/nothing'], io),
    ).toBe(1);
  });
});
