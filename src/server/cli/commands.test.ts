import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodePem } from '../../spiffe/pem.js';
import {
  runCli,
  type StubAdminServer,
  type StubRoute,
  startStubAdminServer,
} from './stub-admin-server.test-support.js';

const CERT_PEM = encodePem('CERTIFICATE', Buffer.from('not really a certificate'));
const KEY_PEM = encodePem('PRIVATE KEY', Buffer.from('not really a key'));
const AGENT_ID = 'spiffe://example.org/sigil/agent/join_token/abc';
const AGENT = {
  spiffe_id: AGENT_ID,
  attestation_type: 'join_token',
  serial: '01',
  expires_at: 1_900_000_000,
  selectors: ['join_token:abc'],
  banned: false,
  can_reattest: false,
};

let stub: StubAdminServer | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

async function serve(routes: Record<string, StubRoute>): Promise<StubAdminServer> {
  stub = await startStubAdminServer(routes);
  return stub;
}

describe('token generate', () => {
  it('POSTs ttl and alias ID and prints the token', async () => {
    const reply = { token: 'tok-123', spiffe_id: 'spiffe://example.org/host/a', expires_at: 1_900_000_000 };
    const s = await serve({ 'POST /v1/join-tokens': { status: 201, json: reply } });
    const run = await s.cli([
      'token',
      'generate',
      '--spiffe-id',
      'spiffe://example.org/host/a',
      '--ttl',
      '10m',
    ]);
    expect(s.requests[0]).toMatchObject({
      method: 'POST',
      path: '/v1/join-tokens',
      body: { spiffe_id: 'spiffe://example.org/host/a', ttl: '10m' },
    });
    expect(run).toEqual({
      code: 0,
      stdout:
        'Token      : tok-123\nSPIFFE ID  : spiffe://example.org/host/a\nExpires at : 2030-03-17T17:46:40Z\n',
      stderr: '',
    });
    const json = await s.cli(['token', 'generate', '--output', 'json']);
    expect(s.requests[1]!.body).toEqual({});
    expect(JSON.parse(json.stdout)).toEqual(reply);
  });
});

describe('agent', () => {
  it('lists every page as a table', async () => {
    const s = await serve({
      'GET /v1/agents': (req) =>
        req.query['page_token'] === undefined
          ? { json: { agents: [AGENT], next_page_token: 'n' } }
          : { json: { agents: [{ ...AGENT, spiffe_id: 'spiffe://example.org/b', banned: true }] } },
    });
    const run = await s.cli(['agent', 'list']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        'Found 2 agents',
        `${'SPIFFE ID'.padEnd(AGENT_ID.length)}  ATTESTATION  EXPIRES AT            STATUS`,
        `${AGENT_ID}  join_token   2030-03-17T17:46:40Z  ok`,
        `${'spiffe://example.org/b'.padEnd(AGENT_ID.length)}  join_token   2030-03-17T17:46:40Z  banned`,
        '',
      ].join('\n'),
    );
    expect(s.requests.map((r) => r.query)).toEqual([{}, { page_token: ['n'] }]);
  });

  it.each([
    ['show', 'GET', '', 'SPIFFE ID        : spiffe://example.org/sigil/agent/join_token/abc\n'],
    ['evict', 'DELETE', '', `Evicted agent ${AGENT_ID}\n`],
    ['ban', 'POST', '/ban', `Banned agent ${AGENT_ID}\n`],
  ])('%s sends %s to the URL-encoded agent path', async (sub, method, suffix, printed) => {
    const path = `/v1/agents/${encodeURIComponent(AGENT_ID)}${suffix}`;
    const s = await serve({ [`${method} ${path}`]: { json: { agent: AGENT } } });
    const run = await s.cli(['agent', sub, '--spiffe-id', AGENT_ID]);
    expect(run.code).toBe(0);
    expect(run.stdout.startsWith(printed)).toBe(true);
    expect(s.requests).toEqual([{ method, path, query: {}, body: undefined, contentType: undefined }]);
  });
});

describe('bundle', () => {
  const spiffeBundle = {
    keys: [{ use: 'x509-svid', kty: 'EC', x5c: [Buffer.from('der').toString('base64')] }],
  };

  it('show asks for PEM by default and prints the body as is', async () => {
    const s = await serve({ 'GET /v1/bundle': { text: CERT_PEM } });
    expect(await s.cli(['bundle', 'show'])).toEqual({ code: 0, stdout: CERT_PEM, stderr: '' });
    await s.cli(['bundle', 'show', '--format', 'spiffe', '--id', 'other.org']);
    expect(s.requests.map((r) => [r.path, r.query])).toEqual([
      ['/v1/bundle', { format: ['pem'] }],
      ['/v1/bundles/other.org', { format: ['spiffe'] }],
    ]);
  });

  it('list prints each federated bundle as PEM, or the raw body with --output json', async () => {
    const body = {
      bundles: [{ trust_domain: 'other.org', sequence: 3, updated_at: 1_900_000_000, bundle: spiffeBundle }],
    };
    const s = await serve({ 'GET /v1/bundles': { json: body } });
    const run = await s.cli(['bundle', 'list']);
    expect(run.stdout).toBe(
      `Found 1 federated bundle\n\n***** other.org (sequence 3, updated 2030-03-17T17:46:40Z)\n${encodePem('CERTIFICATE', Buffer.from('der'))}`,
    );
    expect((await s.cli(['bundle', 'list', '--format', 'spiffe'])).stdout).toContain('"use": "x509-svid"');
    expect(JSON.parse((await s.cli(['bundle', 'list', '--output', 'json'])).stdout)).toEqual(body);
  });

  it('set detects PEM and SPIFFE files and PUTs the matching body', async () => {
    const saved = { trust_domain: 'other.org', sequence: 4, updated_at: 1, bundle: spiffeBundle };
    const s = await serve({ 'PUT /v1/bundles/other.org': { json: saved } });
    const pemFile = join(s.dir, 'ca.pem');
    const jsonFile = join(s.dir, 'bundle.json');
    await writeFile(pemFile, CERT_PEM);
    await writeFile(jsonFile, JSON.stringify(spiffeBundle));
    const run = await s.cli(['bundle', 'set', '--id', 'spiffe://other.org', '--path', pemFile]);
    expect(run).toEqual({ code: 0, stdout: 'Bundle for other.org set (sequence 4)\n', stderr: '' });
    await s.cli(['bundle', 'set', '--id', 'other.org', '--path', jsonFile]);
    expect(s.requests.map((r) => [r.method, r.path, r.body])).toEqual([
      ['PUT', '/v1/bundles/other.org', { pem: CERT_PEM }],
      ['PUT', '/v1/bundles/other.org', { bundle: spiffeBundle }],
    ]);
  });

  it('delete sends DELETE and handles the empty 204', async () => {
    const s = await serve({ 'DELETE /v1/bundles/other.org': { status: 204 } });
    expect(await s.cli(['bundle', 'delete', '--id', 'other.org'])).toEqual({
      code: 0,
      stdout: 'Deleted bundle for other.org\n',
      stderr: '',
    });
    expect(await s.cli(['bundle', 'delete', '--id', 'other.org', '--output', 'json'])).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
  });
});

describe('x509 mint and jwt mint', () => {
  const minted = {
    spiffe_id: 'spiffe://example.org/web',
    svid_pem: CERT_PEM,
    key_pem: KEY_PEM,
    bundle_pem: CERT_PEM,
    expires_at: 1_900_000_000,
  };

  it('prints SVID, key and bundle without --write', async () => {
    const s = await serve({ 'POST /v1/x509-svids': { json: minted } });
    const run = await s.cli([
      'x509',
      'mint',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--ttl',
      '1h',
      '--dns',
      'web',
    ]);
    expect(s.requests[0]!.body).toEqual({
      spiffe_id: 'spiffe://example.org/web',
      ttl: '1h',
      dns_names: ['web'],
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`X509-SVID:\n${CERT_PEM}\nPrivate key:\n${KEY_PEM}\nBundle:\n${CERT_PEM}`);
  });

  it('--write creates the directory 0700 and the key 0600, printing no key', async () => {
    const s = await serve({ 'POST /v1/x509-svids': { json: minted } });
    const dir = join(s.dir, 'out', 'web');
    const run = await s.cli(['x509', 'mint', '--spiffe-id', 'spiffe://example.org/web', '--write', dir]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('PRIVATE KEY');
    expect(await readFile(join(dir, 'svid.key'), 'utf8')).toBe(KEY_PEM);
    expect(await readFile(join(dir, 'svid.pem'), 'utf8')).toBe(CERT_PEM);
    expect(await readFile(join(dir, 'bundle.pem'), 'utf8')).toBe(CERT_PEM);
    expect((await stat(join(dir, 'svid.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const json = await s.cli([
      'x509',
      'mint',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--write',
      dir,
      '--output',
      'json',
    ]);
    const { key_pem: _key, ...withoutKey } = minted;
    expect(JSON.parse(json.stdout)).toEqual(withoutKey);
  });

  it('--write replaces an existing key file, keeping 0600', async () => {
    const s = await serve({ 'POST /v1/x509-svids': { json: minted } });
    const dir = join(s.dir, 'existing');
    await mkdir(dir);
    await writeFile(join(dir, 'svid.key'), 'old', { mode: 0o644 });
    expect(
      (await s.cli(['x509', 'mint', '--spiffe-id', 'spiffe://example.org/web', '--write', dir])).code,
    ).toBe(0);
    expect((await stat(join(dir, 'svid.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'svid.key'), 'utf8')).toBe(KEY_PEM);
  });

  it('jwt mint sends every audience and prints the bare token', async () => {
    const s = await serve({
      'POST /v1/jwt-svids': { json: { spiffe_id: 'x', token: 'eyJ.a.b', expires_at: 1 } },
    });
    const run = await s.cli([
      'jwt',
      'mint',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--audience',
      'a',
      '--audience',
      'b',
      '--ttl',
      '5m',
    ]);
    expect(run).toEqual({ code: 0, stdout: 'eyJ.a.b\n', stderr: '' });
    expect(s.requests[0]!.body).toEqual({
      spiffe_id: 'spiffe://example.org/web',
      audience: ['a', 'b'],
      ttl: '5m',
    });
  });
});

describe('healthcheck and server failures', () => {
  it('is healthy when /healthz and /readyz answer 200, and --shallow skips /readyz', async () => {
    const s = await serve({
      'GET /healthz': { json: { status: 'ok' } },
      'GET /readyz': { json: { status: 'ok' } },
    });
    expect(await s.cli(['healthcheck'])).toEqual({ code: 0, stdout: 'Server is healthy\n', stderr: '' });
    expect(await s.cli(['healthcheck', '--shallow'])).toMatchObject({ code: 0 });
    expect(s.requests.map((r) => r.path)).toEqual(['/healthz', '/readyz', '/healthz']);
  });

  it('exits 4 when /readyz answers 503', async () => {
    const error = { code: 'ERR_CA_UNAVAILABLE', message: 'no active CA' };
    const s = await serve({
      'GET /healthz': { json: { status: 'ok' } },
      'GET /readyz': { status: 503, json: { error } },
    });
    const run = await s.cli(['healthcheck']);
    expect(run).toMatchObject({ code: 4, stdout: '' });
    expect(run.stderr).toBe('Server is unhealthy: /readyz answered 503: no active CA\n');
    expect(JSON.parse((await s.cli(['healthcheck', '--output', 'json'])).stdout)).toEqual({ error });
  });

  it('exits 4 on a 5xx, wrapping a non-JSON body in the error shape for --output json', async () => {
    const s = await serve({ 'GET /v1/bundle': { status: 500, text: 'boom' } });
    const run = await s.cli(['bundle', 'show']);
    expect(run.code).toBe(4);
    expect(run.stderr).toBe(
      'sigil-server bundle show: server error: 500 ERR_UNEXPECTED_RESPONSE: server answered 500 with "boom"\n',
    );
    const json = await s.cli(['bundle', 'show', '--output', 'json']);
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'ERR_UNEXPECTED_RESPONSE', message: 'server answered 500 with "boom"' },
    });
  });

  it('exits 3 when the socket does not exist, or exists with nobody listening', async () => {
    const s = await serve({});
    const missing = join(s.dir, 'missing.sock');
    const run = await runCli(['healthcheck', '--admin-socket', missing]);
    expect(run).toMatchObject({ code: 3, stdout: '' });
    expect(run.stderr).toBe(
      `sigil-server healthcheck: cannot reach the admin API at ${missing}: socket does not exist (is sigil-server running? check --admin-socket)\n`,
    );
    // A socket file left behind by a dead server: rename it away before closing, so it survives.
    const stale = join(s.dir, 'stale.sock');
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(join(s.dir, 'live.sock'), resolve));
    await rename(join(s.dir, 'live.sock'), stale);
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    const refused = await runCli(['agent', 'list', '--admin-socket', stale, '--output', 'json']);
    expect(refused.code).toBe(3);
    expect(JSON.parse(refused.stdout).error).toMatchObject({
      code: 'ERR_UNAVAILABLE',
      field: 'admin-socket',
    });
    expect(JSON.parse(refused.stdout).error.message).toContain('connection refused');
  });

  it('uses $SIGIL_ADMIN_SOCKET when --admin-socket is not given', async () => {
    const s = await serve({ 'GET /healthz': { json: { status: 'ok' } } });
    expect(await runCli(['healthcheck', '--shallow'], { SIGIL_ADMIN_SOCKET: s.socketPath })).toMatchObject({
      code: 0,
    });
    expect(s.requests).toHaveLength(1);
  });
});
