// Every malformed request gets a 4xx naming the problem and leaves the store exactly as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminFixture, startAdminFixture } from '../../../../test/support/admin-app.js';

let fx: AdminFixture;
let existingId: string;

const TD = 'spiffe://example.org';
const good = { spiffe_id: `${TD}/web`, parent_id: `${TD}/node1`, selectors: ['unix:uid:1000'] };

beforeAll(async () => {
  fx = await startAdminFixture();
  const res = await fx.app.inject({ method: 'POST', url: '/v1/entries', payload: good });
  expect(res.statusCode).toBe(201);
  existingId = res.json().entry.id;
});
afterAll(async () => fx?.close());

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string | (() => string);
  body?: unknown;
  raw?: string;
  contentType?: string;
  status: number;
  code: string;
  message: RegExp;
}

const entry = (patch: Record<string, unknown>) => ({ ...good, spiffe_id: `${TD}/other`, ...patch });

const cases: Case[] = [
  {
    name: 'SPIFFE ID with uppercase trust domain',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ spiffe_id: 'spiffe://Example.org/web' }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /body\.spiffe_id: .*trust domain may contain only lowercase/,
  },
  {
    name: 'SPIFFE ID with wrong scheme',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ spiffe_id: 'https://example.org/web' }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /must start with "spiffe:\/\/"/,
  },
  {
    name: 'SPIFFE ID with trailing slash',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ spiffe_id: `${TD}/web/` }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /must not end with "\/"/,
  },
  {
    name: 'SPIFFE ID with dot segment',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ spiffe_id: `${TD}/a/../b` }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /"\." or "\.\." segments/,
  },
  {
    name: 'SPIFFE ID with empty segment',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ spiffe_id: `${TD}/a//b` }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /empty segments/,
  },
  {
    name: 'SPIFFE ID with percent-encoding',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ spiffe_id: `${TD}/a%20b` }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /path may contain only/,
  },
  {
    name: 'SPIFFE ID of another trust domain',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ spiffe_id: 'spiffe://other.org/web' }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /not in this server's trust domain "example.org"/,
  },
  {
    name: 'SPIFFE ID without a path',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ spiffe_id: TD }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /must have a path/,
  },
  {
    name: 'parent ID malformed',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ parent_id: 'spiffe:///node' }),
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /body\.parent_id: .*missing a trust domain/,
  },
  {
    name: 'parent ID and node both given',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ node: true }),
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /either parent_id or "node": true/,
  },
  {
    name: 'parent ID missing',
    method: 'POST',
    url: '/v1/entries',
    body: { spiffe_id: `${TD}/x`, selectors: ['unix:uid:1'] },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.parent_id: is required/,
  },
  {
    name: 'spiffe_id missing',
    method: 'POST',
    url: '/v1/entries',
    body: { parent_id: `${TD}/n`, selectors: ['unix:uid:1'] },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.spiffe_id: is required/,
  },
  {
    name: 'selector without a colon',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ selectors: ['unixuid1000'] }),
    status: 400,
    code: 'ERR_SELECTOR_INVALID',
    message: /selectors\[0\]: selector "unixuid1000" must be "type:value"/,
  },
  {
    name: 'selector with empty value',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ selectors: ['unix:'] }),
    status: 400,
    code: 'ERR_SELECTOR_INVALID',
    message: /value is empty/,
  },
  {
    name: 'selector with uppercase type',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ selectors: [{ type: 'Unix', value: 'uid:1' }] }),
    status: 400,
    code: 'ERR_SELECTOR_INVALID',
    message: /type must be lowercase/,
  },
  {
    name: 'no selectors at all',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ selectors: [] }),
    status: 400,
    code: 'ERR_SELECTOR_INVALID',
    message: /at least one selector/,
  },
  {
    name: 'selector object with an extra field',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ selectors: [{ type: 'unix', value: 'uid:1', weight: 2 }] }),
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.selectors\[0\]/,
  },
  {
    name: 'TTL with an unknown unit',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ x509_svid_ttl: '90x' }),
    status: 400,
    code: 'ERR_DURATION_INVALID',
    message: /x509_svid_ttl: "90x" is not a duration/,
  },
  {
    name: 'TTL negative',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ jwt_svid_ttl: -5 }),
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.jwt_svid_ttl/,
  },
  {
    name: 'TTL as a boolean',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ x509_svid_ttl: true }),
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.x509_svid_ttl/,
  },
  {
    name: 'DNS name with a space',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ dns_names: ['bad name.example'] }),
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /dns_names\[0\]/,
  },
  {
    name: 'federates_with a malformed trust domain',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ federates_with: ['Other.Org'] }),
    status: 400,
    code: 'ERR_TRUST_DOMAIN_INVALID',
    message: /federates_with\[0\]/,
  },
  {
    name: 'hint over 1024 bytes',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ hint: 'h'.repeat(1025) }),
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /hint: is longer than 1024 bytes/,
  },
  {
    name: 'expires_at not an integer',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ expires_at: 'tomorrow' }),
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.expires_at/,
  },
  {
    name: 'unknown field (typo)',
    method: 'POST',
    url: '/v1/entries',
    body: entry({ parentid: 'x' }),
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /unknown field "parentid"/,
  },
  {
    name: 'body is not JSON',
    method: 'POST',
    url: '/v1/entries',
    raw: '{"spiffe_id": ',
    contentType: 'application/json',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body:/,
  },
  {
    name: 'body is a JSON array',
    method: 'POST',
    url: '/v1/entries',
    body: [good],
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body: must be object/,
  },
  {
    name: 'body over 1 MiB',
    method: 'POST',
    url: '/v1/entries',
    raw: JSON.stringify(entry({ hint: 'x'.repeat(1_100_000) })),
    contentType: 'application/json',
    status: 413,
    code: 'ERR_INPUT_INVALID',
    message: /larger than the limit/,
  },
  {
    name: 'duplicate entry',
    method: 'POST',
    url: '/v1/entries',
    body: { ...good, selectors: ['unix:uid:1000'] },
    status: 409,
    code: 'ERR_ENTRY_DUPLICATE',
    message: /already|duplicate/i,
  },
  {
    name: 'batch-create with empty list',
    method: 'POST',
    url: '/v1/entries/batch-create',
    body: { entries: [] },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.entries/,
  },
  {
    name: 'batch-create over 500 items',
    method: 'POST',
    url: '/v1/entries/batch-create',
    body: { entries: Array.from({ length: 501 }, () => good) },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.entries/,
  },
  {
    name: 'batch-delete without ids',
    method: 'POST',
    url: '/v1/entries/batch-delete',
    body: {},
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.ids: is required/,
  },
  {
    name: 'show an unknown entry',
    method: 'GET',
    url: '/v1/entries/2f1e5a34-0000-4000-8000-000000000000',
    status: 404,
    code: 'ERR_ENTRY_NOT_FOUND',
    message: /2f1e5a34/,
  },
  {
    name: 'update with an empty body',
    method: 'PATCH',
    url: () => `/v1/entries/${existingId}`,
    body: {},
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body/,
  },
  {
    name: 'update trying to change the id',
    method: 'PATCH',
    url: () => `/v1/entries/${existingId}`,
    body: { id: '2f1e5a34-0000-4000-8000-000000000000' },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /cannot be changed/,
  },
  {
    name: 'update with a malformed SPIFFE ID',
    method: 'PATCH',
    url: () => `/v1/entries/${existingId}`,
    body: { spiffe_id: 'spiffe://example.org/a b' },
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /path may contain only/,
  },
  {
    name: 'delete an unknown entry',
    method: 'DELETE',
    url: '/v1/entries/2f1e5a34-0000-4000-8000-000000000001',
    status: 404,
    code: 'ERR_ENTRY_NOT_FOUND',
    message: /not found|no entry/i,
  },
  {
    name: 'list with an unknown match mode',
    method: 'GET',
    url: '/v1/entries?selector=unix:uid:1&match=some',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /match: must be one of exact, subset, superset, any/,
  },
  {
    name: 'list with page_size 0',
    method: 'GET',
    url: '/v1/entries?page_size=0',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /page_size: must be a whole number from 1 to 1000/,
  },
  {
    name: 'list with a bad selector',
    method: 'GET',
    url: '/v1/entries?selector=nocolon',
    status: 400,
    code: 'ERR_SELECTOR_INVALID',
    message: /must be "type:value"/,
  },
  {
    name: 'list with a forged page token',
    method: 'GET',
    url: '/v1/entries?page_token=%%%',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /page_token/,
  },
  {
    name: 'join token with a TTL beyond 7 days',
    method: 'POST',
    url: '/v1/join-tokens',
    body: { ttl: '30d' },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /7-day maximum/,
  },
  {
    name: 'join token for a foreign alias',
    method: 'POST',
    url: '/v1/join-tokens',
    body: { spiffe_id: 'spiffe://other.org/node' },
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /must be a path in trust domain "example.org"/,
  },
  {
    name: 'agent show with a malformed ID',
    method: 'GET',
    url: `/v1/agents/${encodeURIComponent('spiffe://EXAMPLE/x')}`,
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /spiffe_id/,
  },
  {
    name: 'evict an unknown agent',
    method: 'DELETE',
    url: `/v1/agents/${encodeURIComponent(`${TD}/agent/none`)}`,
    status: 404,
    code: 'ERR_NODE_NOT_FOUND',
    message: /agent\/none/,
  },
  {
    name: 'bundle with an unknown format',
    method: 'GET',
    url: '/v1/bundle?format=der',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /format: must be one of spiffe, pem \(got "der"\)/,
  },
  {
    name: 'federated bundle that is not PEM',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { pem: 'hello' },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message: /no CERTIFICATE block/,
  },
  {
    name: 'federated bundle with broken base64',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { pem: '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n' },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message: /invalid base64/,
  },
  {
    name: 'federated bundle JSON without keys',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { bundle: { spiffe_sequence: 1 } },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message: /keys/,
  },
  {
    name: 'federated bundle for our own trust domain',
    method: 'PUT',
    url: '/v1/bundles/example.org',
    body: { bundle: { keys: [] } },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /own trust domain/,
  },
  {
    name: 'federated bundle with a bad trust domain',
    method: 'PUT',
    url: '/v1/bundles/Other.Org',
    body: { bundle: { keys: [] } },
    status: 400,
    code: 'ERR_TRUST_DOMAIN_INVALID',
    message: /trust_domain/,
  },
  {
    name: 'delete a federated bundle that does not exist',
    method: 'DELETE',
    url: '/v1/bundles/nowhere.org',
    status: 404,
    code: 'ERR_BUNDLE_NOT_FOUND',
    message: /nowhere\.org/,
  },
  {
    name: 'x509 mint for a trust-domain-only ID',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: TD },
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /must have a path/,
  },
  {
    name: 'x509 mint with a garbage CSR',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: `${TD}/web`, csr: 'not a csr' },
    status: 400,
    code: 'ERR_CSR_INVALID',
    message: /./,
  },
  {
    name: 'x509 mint with a bad TTL',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: `${TD}/web`, ttl: '1 hour' },
    status: 400,
    code: 'ERR_DURATION_INVALID',
    message: /body\.ttl: "1 hour" is not a duration/,
  },
  {
    name: 'jwt mint without audience',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: `${TD}/web` },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.audience: is required/,
  },
  {
    name: 'jwt mint with an empty audience',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: `${TD}/web`, audience: [] },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.audience/,
  },
  {
    name: 'unknown route',
    method: 'GET',
    url: '/v1/entriez',
    status: 404,
    code: 'ERR_NOT_FOUND',
    message: /no route GET \/v1\/entriez/,
  },
];

describe('admin API refuses bad input without changing the store', () => {
  it.each(cases)('$name → $status $code', async (c) => {
    const revisionBefore = await fx.store.currentRevision();
    const countBefore = await fx.store.countEntries();
    const bundlesBefore = (await fx.store.listBundles()).length;
    const res = await fx.app.inject({
      method: c.method,
      url: typeof c.url === 'function' ? c.url() : c.url,
      ...(c.raw !== undefined
        ? { payload: c.raw, headers: { 'content-type': c.contentType ?? 'application/json' } }
        : c.body !== undefined
          ? { payload: c.body as object }
          : {}),
    });
    expect(res.statusCode, res.body).toBe(c.status);
    const error = res.json().error;
    expect(error.code).toBe(c.code);
    expect(error.message).toMatch(c.message);
    expect(await fx.store.currentRevision()).toBe(revisionBefore);
    expect(await fx.store.countEntries()).toBe(countBefore);
    expect((await fx.store.listBundles()).length).toBe(bundlesBefore);
  });

  it('has at least 40 distinct cases', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBeGreaterThanOrEqual(40);
  });
});
