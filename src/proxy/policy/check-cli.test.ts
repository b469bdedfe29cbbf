import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../command-flags.test-support.js';
import { policyCommand } from './check-cli.js';

const WEB = 'spiffe://example.org/ns/web/frontend';

const POLICY = `
trust_domains: [example.org]
policies:
  - name: deny-admin
    action: DENY
    rules:
      - to: { ports: [8080], paths: [/admin/*] }
  - name: allow-web
    action: ALLOW
    rules:
      - from: { principals: ["spiffe://example.org/ns/web/*"] }
        to: { ports: [8080], methods: [GET], paths: [/api/*] }
      - from: { principals: ["spiffe://example.org/ns/web/*"] }
        to: { ports: [5432] }
  - name: audit-all
    action: AUDIT
    rules: [{}]
  - name: deny-post-trial
    action: DENY
    dry_run: true
    rules:
      - to: { ports: [8080], methods: [POST] }
`;

let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-policy-cli-'));
  writeFileSync(file('policy.yaml'), POLICY);
  mkdirSync(file('conf'));
  writeFileSync(file('conf/proxy.yaml'), 'inbound_port: 15006\npolicy_file: ../policy.yaml\n');
  writeFileSync(
    file('inline.yaml'),
    'inbound_port: 15006\npolicies:\n  - { name: allow-any, action: ALLOW, rules: [{ from: { principals: ["*"] } }] }\n',
  );
  writeFileSync(
    file('broken.yaml'),
    'policies:\n  - { name: x, action: ALLOW, rules: [{ to: { paths: [api] } }] }\n',
  );
  writeFileSync(
    file('warnings.yaml'),
    'policies:\n  - { name: deny-admin, action: DENY, rules: [{ to: { paths: [/admin] } }] }\n',
  );
  writeFileSync(
    file('errors.yaml'),
    'policies:\n  - { name: allow, action: ALLOW, rules: [{ from: { principals: ["spiffe://exmple.org/web"] } }] }\n',
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (...args: string[]) => runCaptured(policyCommand, args);

const check = (...args: string[]) => run('check', '--config', file('policy.yaml'), ...args);

describe('policy check', () => {
  it('prints ALLOW and the deciding rule, exit 0', async () => {
    const r = await check('--from', WEB, '--to-port', '8080', '--method', 'GET', '--path', '/api/users');
    expect(r).toEqual({
      code: 0,
      stdout:
        'ALLOW\n  policy "allow-web" rule #0 (ALLOW) matched\n  audit: policy "audit-all" rule #0 (AUDIT) matched\n',
      stderr: '',
    });
  });

  it('prints DENY by a DENY rule, exit 1', async () => {
    const r = await check('--from', WEB, '--to-port', '8080', '--method', 'GET', '--path', '/admin/x');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      'DENY',
      '  policy "deny-admin" rule #0 (DENY) matched',
    ]);
  });

  it('prints the default deny, exit 1', async () => {
    const r = await check('--from', 'spiffe://example.org/ns/db', '--to-port', '8080', '--path', '/api/x');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual(['DENY', '  default deny: no ALLOW rule matched']);
  });

  it('treats a missing --from as an unauthenticated caller', async () => {
    const r = await check('--to-port', '5432', '--protocol', 'tcp');
    expect(r.code).toBe(1);
  });

  it('notes a dry-run denial', async () => {
    const allowPost = `${POLICY}  - { name: allow-post, action: ALLOW, rules: [{ to: { methods: [POST] } }] }\n`;
    writeFileSync(file('post.yaml'), allowPost);
    const r = await run(
      'check',
      '--config',
      file('post.yaml'),
      '--from',
      WEB,
      '--to-port',
      '8080',
      '--method',
      'POST',
      '--path',
      '/x',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  dry-run: policy "deny-post-trial" rule #0 (DENY) would deny\n');
  });

  it('authorizes opaque TCP by principal and port', async () => {
    const r = await check('--from', WEB, '--to-port', '5432', '--protocol', 'tcp');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('policy "allow-web" rule #1 (ALLOW) matched');
  });

  it('prints JSON with --output json', async () => {
    const r = await check(
      '--from',
      WEB,
      '--to-port',
      '8080',
      '--method',
      'GET',
      '--path',
      '/api/x',
      '--output',
      'json',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      request: { principal: WEB, port: 8080, protocol: 'http', method: 'GET', path: '/api/x' },
      allow: true,
      enforced: true,
      rule: { policy: 'allow-web', index: 0, action: 'ALLOW' },
      reason: 'policy "allow-web" rule #0 (ALLOW) matched',
      audits: [{ policy: 'audit-all', index: 0, action: 'AUDIT' }],
      dry_run_denials: [],
    });
  });

  it('decides on the path the proxy would forward, and says when it differs from --path', async () => {
    const r = await check('--from', WEB, '--to-port', '8080', '--path', '//x/./y/../../admin/%61?q=1');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([
      'DENY',
      '  policy "deny-admin" rule #0 (DENY) matched',
      '  path: "/admin/a" (normalized from "//x/./y/../../admin/%61?q=1")',
    ]);
    const json = JSON.parse(
      (
        await check(
          '--from',
          WEB,
          '--to-port',
          '8080',
          '--method',
          'GET',
          '--path',
          '/api//x',
          '--output',
          'json',
        )
      ).stdout,
    );
    expect(json).toMatchObject({ request: { path: '/api/x' }, normalized_from: '/api//x', allow: true });
  });

  it('denies a path the proxy refuses (400), as the proxy would', async () => {
    const r = await check('--from', WEB, '--to-port', '8080', '--method', 'GET', '--path', '/admin%2fx');
    expect(r).toEqual({
      code: 1,
      stdout:
        'DENY\n  400 bad request: request target "/admin%2fx" contains an encoded "/" (%2F) (path_normalization.escaped_slashes: reject)\n',
      stderr: '',
    });
    const json = JSON.parse(
      (await check('--to-port', '8080', '--path', '/admin;x=1/y', '--output', 'json')).stdout,
    );
    expect(json).toMatchObject({ allow: false, status: 400, refusal: 'path-parameter' });
  });

  it("normalizes with the proxy config's path_normalization", async () => {
    writeFileSync(
      file('conf/unescape.yaml'),
      'policy_file: ../policy.yaml\npath_normalization: { escaped_slashes: unescape }\n',
    );
    const r = await run(
      'check',
      '--config',
      file('conf/unescape.yaml'),
      '--from',
      WEB,
      '--to-port',
      '8080',
      '--path',
      '/api/..%2fadmin/x',
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('policy "deny-admin" rule #0 (DENY) matched');
    expect(r.stdout).toContain('path: "/admin/x"');
    writeFileSync(
      file('conf/bad-norm.yaml'),
      'policy_file: ../policy.yaml\npath_normalization: { escaped_slashes: maybe }\n',
    );
    const bad = await run(
      'check',
      '--config',
      file('conf/bad-norm.yaml'),
      '--to-port',
      '8080',
      '--path',
      '/',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      'path_normalization.escaped_slashes: must be one of reject, unescape, keep (got "maybe")',
    );
  });

  it('follows policy_file in a proxy config, relative to the config', async () => {
    const r = await run(
      'check',
      '--config',
      file('conf/proxy.yaml'),
      '--from',
      WEB,
      '--to-port',
      '5432',
      '--protocol',
      'tcp',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('allow-web');
  });

  it('reads policies inline in a proxy config', async () => {
    const r = await run('check', '--config', file('inline.yaml'), '--from', WEB, '--to-port', '1');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('policy "allow-any" rule #0 (ALLOW) matched');
  });

  it.each([
    [['--to-port', '8080'], 'missing --config FILE'],
    [['--config', 'x.yaml'], 'missing --to-port P'],
    [['--config', 'x.yaml', '--to-port', '80', '--bogus'], 'unknown flag --bogus'],
    [['--config', 'x.yaml', '--to-prot', '80'], 'unknown flag --to-prot; did you mean --to-port?'],
    [['--config', 'x.yaml', '--to-port', '0'], '--to-port: must be a port number from 1 to 65535 (got "0")'],
    [
      ['--config', 'x.yaml', '--to-port', '80', '--from', 'web'],
      '--from: SPIFFE ID "web" must start with "spiffe://"',
    ],
    [
      ['--config', 'x.yaml', '--to-port', '80', '--protocol', 'udp'],
      '--protocol: must be http or tcp (got "udp")',
    ],
    [
      ['--config', 'x.yaml', '--to-port', '80', '--protocol', 'tcp', '--path', '/'],
      '--method and --path apply to http only',
    ],
    [['--config', 'x.yaml', '--to-port', '80', '--path', 'x'], '--path: must start with "/"'],
    [
      ['--config', 'x.yaml', '--to-port', '80', '--output', 'xml'],
      '--output: must be text or json (got "xml")',
    ],
    [['--config', '/nonexistent/p.yaml', '--to-port', '80'], 'cannot read /nonexistent/p.yaml (ENOENT)'],
  ])('exits 2 on a usage error: %j', async (args, message) => {
    const r = await run('check', ...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
  });

  it('exits 2 on a broken policy file, naming the dotted path', async () => {
    const r = await run('check', '--config', file('broken.yaml'), '--to-port', '80');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('policies[0].rules[0].to.paths[0]: "api" must start with "/"');
  });

  it('prints help', async () => {
    const r = await run('check', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: sigil-proxy policy check');
  });
});

describe('policy lint', () => {
  it('exits 0 and says so when there is nothing to report', async () => {
    writeFileSync(
      file('clean.yaml'),
      'policies:\n  - { name: a, action: ALLOW, rules: [{ from: { principals: ["*"] } }] }\n',
    );
    expect(await run('lint', file('clean.yaml'))).toEqual({ code: 0, stdout: 'no findings\n', stderr: '' });
  });

  it('exits 0 with only warnings', async () => {
    const r = await run('lint', file('warnings.yaml'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('warning policy "deny-admin" rule #0: denies all opaque TCP traffic');
    expect(r.stdout).toContain('[deny-blocks-tcp]');
    expect(r.stdout).toMatch(/0 errors, 1 warning\n$/);
  });

  it('exits 1 with an error, using --trust-domain', async () => {
    const r = await run('lint', file('errors.yaml'), '--trust-domain', 'example.org');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'error   policy "allow" rule #0: principal "spiffe://exmple.org/web" is outside the known trust domains (example.org) [unknown-trust-domain]',
    );
    expect(r.stdout).toMatch(/1 error, 0 warnings\n$/);
  });

  it('prints JSON findings', async () => {
    const r = await run('lint', file('errors.yaml'), '--trust-domain', 'example.org', '--output', 'json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).findings).toEqual([
      expect.objectContaining({ severity: 'error', code: 'unknown-trust-domain', policy: 'allow', rule: 0 }),
    ]);
  });

  it.each([
    [[], 'missing FILE'],
    [['a.yaml', 'b.yaml'], 'unexpected argument "b.yaml"'],
    [['a.yaml', '--trust-domain', 'Bad'], '--trust-domain: trust domain "Bad"'],
  ])('exits 2 on a usage error: %j', async (args, message) => {
    const r = await run('lint', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('prints help', async () => {
    expect((await run('lint', '--help')).stdout).toContain('Usage: sigil-proxy policy lint FILE');
  });
});

/** Every key of a JSON value, nested ones included. */
function keysOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysOf);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)]);
}

describe('--output json', () => {
  it('uses snake_case keys only, in check (decided and refused) and lint', async () => {
    const outputs = [
      await check(
        '--from',
        WEB,
        '--to-port',
        '8080',
        '--method',
        'POST',
        '--path',
        '/x//y',
        '--output',
        'json',
      ),
      await check('--to-port', '8080', '--path', '/admin;x=1/y', '--output', 'json'),
      await check('--to-port', '15006', '--output', 'json'),
      await run('lint', file('errors.yaml'), '--output', 'json'),
    ];
    const keys = outputs.flatMap((r) => keysOf(JSON.parse(r.stdout)));
    expect(keys).toContain('dry_run_denials');
    expect(keys).toContain('normalized_from');
    expect(keys.filter((k) => !/^[a-z0-9]+(_[a-z0-9]+)*$/.test(k))).toEqual([]);
  });
});

describe('policy', () => {
  it('prints the command list for --help and rejects an unknown command', async () => {
    expect(await run('--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('check') });
    const r = await run('frobnicate');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});
