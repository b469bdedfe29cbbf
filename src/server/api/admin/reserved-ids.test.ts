// Every admin path where an operator chooses an ID refuses Sigil's reserved /sigil namespace with
// a 400 naming the field, the ID and why, logs the refusal, and leaves the store as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminFixture, startAdminFixture } from '../../../../test/support/admin-app.js';

const TD = 'spiffe://example.org';
const RESERVED = [`${TD}/sigil/server`, `${TD}/sigil`, `${TD}/sigil/agent/join_token/abc`];
const entry = (spiffeId: string) => ({
  spiffe_id: spiffeId,
  parent_id: `${TD}/node1`,
  selectors: ['unix:uid:0'],
});

let fx: AdminFixture;
let existingId: string;

beforeAll(async () => {
  fx = await startAdminFixture();
  const res = await fx.app.inject({ method: 'POST', url: '/v1/entries', payload: entry(`${TD}/web`) });
  existingId = res.json().entry.id;
});
afterAll(async () => fx?.close());

const paths = (id: string) => [
  { name: 'entry create', method: 'POST', url: '/v1/entries', body: entry(id), field: 'body.spiffe_id' },
  {
    name: 'node entry create',
    method: 'POST',
    url: '/v1/entries',
    body: { spiffe_id: id, node: true, selectors: ['k8s_sat:cluster:c'] },
    field: 'body.spiffe_id',
  },
  {
    name: 'entry update',
    method: 'PATCH',
    url: () => `/v1/entries/${existingId}`,
    body: { spiffe_id: id },
    field: 'body.spiffe_id',
  },
  {
    name: 'batch create',
    method: 'POST',
    url: '/v1/entries/batch-create',
    body: { entries: [entry(`${TD}/fine`), entry(id)] },
    field: 'entries[1].spiffe_id',
  },
  {
    name: 'join token alias',
    method: 'POST',
    url: '/v1/join-tokens',
    body: { spiffe_id: id },
    field: 'body.spiffe_id',
  },
  {
    name: 'x509 mint',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: id },
    field: 'body.spiffe_id',
  },
  {
    name: 'jwt mint',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: id, audience: ['a'] },
    field: 'body.spiffe_id',
  },
];

describe('reserved IDs at the admin API', () => {
  const cases = RESERVED.flatMap((id) => paths(id).map((p) => ({ ...p, id, label: `${p.name}: ${id}` })));

  it.each(cases)('$label → 400 ERR_SPIFFE_ID_RESERVED', async (c) => {
    const before = {
      revision: await fx.store.currentRevision(),
      tokens: (await fx.store.listJoinTokens()).length,
    };
    const logged = fx.logLines.length;
    const res = await fx.app.inject({
      method: c.method as 'POST' | 'PATCH',
      url: typeof c.url === 'function' ? c.url() : c.url,
      payload: c.body,
    });
    const error = c.name === 'batch create' ? res.json().results[1] : res.json().error;
    if (c.name === 'batch create') {
      expect(res.json().results.map((r: { status: number }) => r.status)).toEqual([201, 400]);
      // The valid item of the batch is created; only the reserved one is refused.
      await fx.store.deleteEntry(res.json().results[0].entry.id);
    } else {
      expect(res.statusCode, res.body).toBe(400);
      expect(await fx.store.currentRevision()).toBe(before.revision);
    }
    const body = c.name === 'batch create' ? error.error : error;
    expect(body.code).toBe('ERR_SPIFFE_ID_RESERVED');
    expect(body.field).toBe(c.field);
    expect(body.message).toBe(
      `${c.field}: SPIFFE ID "${c.id}" is reserved for Sigil's server and agents (everything under ${TD}/sigil); choose another path`,
    );
    expect((await fx.store.listJoinTokens()).length).toBe(before.tokens);
    if (c.name !== 'batch create') {
      expect(fx.logLines.slice(logged).join('')).toMatch(
        /"code":"ERR_SPIFFE_ID_RESERVED".*"msg":"Admin request refused"/,
      );
    }
  });

  it('accepts the server and agents as parent IDs, and look-alike paths as IDs', async () => {
    for (const body of [
      { spiffe_id: `${TD}/w1`, parent_id: `${TD}/sigil/agent/join_token/abc`, selectors: ['unix:uid:1'] },
      { spiffe_id: `${TD}/sigilx/w2`, parent_id: `${TD}/sigil/server`, selectors: ['unix:uid:2'] },
    ]) {
      const res = await fx.app.inject({ method: 'POST', url: '/v1/entries', payload: body });
      expect(res.statusCode, res.body).toBe(201);
    }
  });
});
