import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { escapeUnsafeCharacters } from '../../spiffe/text.js';
import {
  type StubAdminServer,
  type StubRoute,
  startStubAdminServer,
} from './stub-admin-server.test-support.js';

const ID = '6f1c2a9e-3b4d-4c5e-8f70-112233445566';
const ENTRY = {
  id: ID,
  spiffe_id: 'spiffe://example.org/web',
  parent_id: 'spiffe://example.org/agent/node1',
  selectors: [{ type: 'unix', value: 'uid:1000' }, 'unix:gid:50'],
  x509_svid_ttl: 3600,
  jwt_svid_ttl: 0,
  dns_names: ['web.example.org'],
  federates_with: [],
  admin: false,
  downstream: false,
  hint: '',
  expires_at: null,
  revision: 2,
  created_at: 1_700_000_000,
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

describe('entry create', () => {
  it('sends every field flag as EntryInput and prints the entry as aligned lines', async () => {
    const s = await serve({ 'POST /v1/entries': { status: 201, json: { entry: ENTRY } } });
    const run = await s.cli([
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--parent-id',
      'spiffe://example.org/agent/node1',
      '--selector',
      'unix:uid:1000',
      '--selector',
      'unix:gid:50',
      '--x509-svid-ttl',
      '1h',
      '--jwt-svid-ttl',
      '90s',
      '--dns',
      'web.example.org',
      '--dns',
      '*.web.example.org',
      '--admin',
      '--downstream',
      '--federates-with',
      'other.org',
      '--federates-with',
      'spiffe://third.org',
      '--hint',
      'web',
      '--expires-at',
      '2030-01-02T03:04:05Z',
      '--id',
      ID,
    ]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(s.requests).toEqual([
      {
        method: 'POST',
        path: '/v1/entries',
        query: {},
        contentType: 'application/json',
        body: {
          spiffe_id: 'spiffe://example.org/web',
          parent_id: 'spiffe://example.org/agent/node1',
          selectors: ['unix:uid:1000', 'unix:gid:50'],
          x509_svid_ttl: '1h',
          jwt_svid_ttl: '90s',
          dns_names: ['web.example.org', '*.web.example.org'],
          federates_with: ['other.org', 'third.org'],
          admin: true,
          downstream: true,
          hint: 'web',
          expires_at: 1_893_553_445,
          id: ID,
        },
      },
    ]);
    expect(run.stdout).toBe(
      [
        `Entry ID      : ${ID}`,
        'SPIFFE ID     : spiffe://example.org/web',
        'Parent ID     : spiffe://example.org/agent/node1',
        'Revision      : 2',
        'X509-SVID TTL : 3600s',
        'JWT-SVID TTL  : default',
        'Expires at    : never',
        'Selector      : unix:uid:1000',
        'Selector      : unix:gid:50',
        'DNS name      : web.example.org',
        '',
      ].join('\n'),
    );
  });

  it('makes a node entry with --node and takes --expires-at as Unix seconds', async () => {
    const s = await serve({ 'POST /v1/entries': { status: 201, json: { entry: ENTRY } } });
    const run = await s.cli([
      'entry',
      'create',
      '--node',
      '--spiffe-id',
      'spiffe://example.org/nodes/k8s',
      '--selector',
      'k8s_sat:cluster:c1',
      '--expires-at',
      '1900000000',
      '--output',
      'json',
    ]);
    expect(run.code).toBe(0);
    expect(s.requests[0]!.body).toEqual({
      spiffe_id: 'spiffe://example.org/nodes/k8s',
      node: true,
      selectors: ['k8s_sat:cluster:c1'],
      expires_at: 1_900_000_000,
    });
    expect(JSON.parse(run.stdout)).toEqual({ entry: ENTRY });
  });

  it('exits 1 on a 409 and prints the server code and message (text and json)', async () => {
    const error = {
      code: 'ERR_ENTRY_DUPLICATE',
      message: 'an entry with these selectors exists',
      field: 'selectors',
    };
    const s = await serve({ 'POST /v1/entries': { status: 409, json: { error } } });
    const args = [
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--node',
      '--selector',
      'unix:uid:1',
    ];
    const text = await s.cli(args);
    expect(text).toMatchObject({ code: 1, stdout: '' });
    expect(text.stderr).toContain(
      '409 ERR_ENTRY_DUPLICATE: an entry with these selectors exists (field: selectors)',
    );
    const json = await s.cli([...args, '--output', 'json']);
    expect(json).toMatchObject({ code: 1, stderr: '' });
    expect(JSON.parse(json.stdout)).toEqual({ error });
  });

  it('batch-creates from --data, prints per-entry results and exits 1 when any failed', async () => {
    const results = [
      { status: 'ok', entry: ENTRY },
      { status: 'error', error: { code: 'ERR_SPIFFE_ID_INVALID', message: 'spiffe_id: bad' } },
    ];
    const s = await serve({ 'POST /v1/entries/batch-create': { json: { results } } });
    const entries = [{ spiffe_id: 'spiffe://example.org/web' }, { spiffe_id: 'nope' }];
    const file = join(s.dir, 'batch.json');
    await writeFile(file, JSON.stringify({ entries }));
    const run = await s.cli(['entry', 'create', '--data', file]);
    expect(s.requests[0]).toMatchObject({
      method: 'POST',
      path: '/v1/entries/batch-create',
      body: { entries },
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe(
      `1: created ${ID} spiffe://example.org/web\n2: failed ERR_SPIFFE_ID_INVALID: spiffe_id: bad\n1 created, 1 failed\n`,
    );
    const json = await s.cli(['entry', 'create', '--data', file, '--output', 'json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ results });
  });

  it('exits 0 when every batch entry was created', async () => {
    const s = await serve({
      'POST /v1/entries/batch-create': { json: { results: [{ status: 'ok', entry: ENTRY }] } },
    });
    const file = join(s.dir, 'one.json');
    await writeFile(file, JSON.stringify({ entries: [{ spiffe_id: 'spiffe://example.org/web' }] }));
    expect((await s.cli(['entry', 'create', '--data', file])).code).toBe(0);
  });
});

describe('entry show', () => {
  it('shows one entry by --id', async () => {
    const s = await serve({ [`GET /v1/entries/${ID}`]: { json: { entry: ENTRY } } });
    const run = await s.cli(['entry', 'show', '--id', ID]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Entry ID      : ${ID}`);
    expect(s.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /v1/entries/${ID}`]);
  });

  it('never prints a stored control character raw, in text or JSON, nor in a refusal', async () => {
    const hint = 'ok\u001b[2J\u001b]0;pwned\u0007 \u009b31m \u202etxt';
    const s = await serve({
      [`GET /v1/entries/${ID}`]: { json: { entry: { ...ENTRY, hint } } },
      'GET /v1/entries': {
        status: 400,
        json: { error: { code: 'ERR_INPUT_INVALID', message: `bad \u001b[31m${hint}` } },
      },
    });
    const text = await s.cli(['entry', 'show', '--id', ID]);
    expect(text.stdout).toContain('Hint          : ok\\u001b[2J\\u001b]0;pwned\\u0007 \\u009b31m \\u202etxt');
    const json = await s.cli(['entry', 'show', '--id', ID, '--output', 'json']);
    expect(JSON.parse(json.stdout).entry.hint).toBe(hint);
    const refused = await s.cli(['entry', 'show', '--spiffe-id', 'spiffe://example.org/web']);
    expect(refused.code).toBe(1);
    // Nothing left to escape: no control, bidi or line-separator character reached the terminal.
    for (const out of [text.stdout, json.stdout, refused.stderr])
      expect(escapeUnsafeCharacters(out)).toBe(out);
  });

  it('lists with filters and follows pagination to the end, with progress on stderr past 3 pages', async () => {
    const pages = ['', 'p2', 'p3', 'p4', 'p5'];
    const s = await serve({
      'GET /v1/entries': (req) => {
        const index = pages.indexOf(req.query['page_token']?.[0] ?? '');
        const next = pages[index + 1];
        return {
          json: { entries: [{ ...ENTRY, id: `e${index}` }], ...(next ? { next_page_token: next } : {}) },
        };
      },
    });
    const run = await s.cli([
      'entry',
      'show',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--parent-id',
      'spiffe://example.org/agent/node1',
      '--selector',
      'unix:uid:1000',
      '--selector',
      'unix:gid:50',
      '--match',
      'superset',
      '--output',
      'json',
    ]);
    expect(run.code).toBe(0);
    expect(s.requests).toHaveLength(5);
    expect(s.requests[0]!.query).toEqual({
      spiffe_id: ['spiffe://example.org/web'],
      parent_id: ['spiffe://example.org/agent/node1'],
      selector: ['unix:uid:1000', 'unix:gid:50'],
      match: ['superset'],
    });
    expect(s.requests.map((r) => r.query['page_token']?.[0])).toEqual([undefined, 'p2', 'p3', 'p4', 'p5']);
    expect(JSON.parse(run.stdout).entries.map((e: { id: string }) => e.id)).toEqual([
      'e0',
      'e1',
      'e2',
      'e3',
      'e4',
    ]);
    expect(run.stderr).toBe('fetched 3 entries (3 pages so far)…\nfetched 4 entries (4 pages so far)…\n');
  });

  it('prints a count and one block per entry, quietly for few pages', async () => {
    const s = await serve({ 'GET /v1/entries': { json: { entries: [ENTRY, { ...ENTRY, id: 'second' }] } } });
    const run = await s.cli(['entry', 'show']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout.startsWith('Found 2 entries\n\nEntry ID')).toBe(true);
    expect(run.stdout).toContain('\n\nEntry ID      : second\n');
    expect(s.requests[0]!.query).toEqual({});
  });

  it('reports a server that repeats a page token as a server error (exit 4)', async () => {
    const s = await serve({ 'GET /v1/entries': { json: { entries: [], next_page_token: 'same' } } });
    const run = await s.cli(['entry', 'show']);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('server repeated page token "same"');
  });
});

describe('entry update and delete', () => {
  it('PATCHes only the given fields, --no-admin and --expires-at never included', async () => {
    const s = await serve({ [`PATCH /v1/entries/${ID}`]: { json: { entry: ENTRY } } });
    const run = await s.cli([
      'entry',
      'update',
      '--id',
      ID,
      '--x509-svid-ttl',
      '30m',
      '--no-admin',
      '--expires-at',
      'never',
    ]);
    expect(run.code).toBe(0);
    expect(s.requests[0]).toMatchObject({
      method: 'PATCH',
      path: `/v1/entries/${ID}`,
      body: { x509_svid_ttl: '30m', admin: false, expires_at: null },
    });
  });

  it('DELETEs by id and exits 1 with the message when the entry is unknown', async () => {
    const error = { code: 'ERR_ENTRY_NOT_FOUND', message: `entry "${ID}" not found` };
    const s = await serve({ [`DELETE /v1/entries/${ID}`]: { status: 404, json: { error } } });
    const run = await s.cli(['entry', 'delete', '--id', ID]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `sigil-server entry delete: server refused the request: 404 ERR_ENTRY_NOT_FOUND: entry "${ID}" not found\n`,
    );
    expect(s.requests[0]).toMatchObject({ method: 'DELETE', path: `/v1/entries/${ID}`, body: undefined });
  });

  it('prints the deleted id', async () => {
    const s = await serve({ [`DELETE /v1/entries/${ID}`]: { json: { entry: ENTRY } } });
    expect(await s.cli(['entry', 'delete', '--id', ID])).toEqual({
      code: 0,
      stdout: `Deleted entry ${ID}\n`,
      stderr: '',
    });
  });
});
