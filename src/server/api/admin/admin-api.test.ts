// The admin API's happy paths over a real SQLite store and a real CA, through app.inject().
import 'reflect-metadata';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminFixture, startAdminFixture } from '../../../../test/support/admin-app.js';
import { bundleFromPem, encodeSpiffeBundle, parseSpiffeBundle } from '../../../spiffe/bundle.js';
import { parseTrustDomain } from '../../../spiffe/id.js';
import { validateJwtSvid } from '../../../spiffe/jwt-svid.js';
import { decodePemBlocks } from '../../../spiffe/pem.js';
import { verifyX509Svid } from '../../../spiffe/x509-svid.js';

const TD = 'spiffe://example.org';
let fx: AdminFixture;

beforeAll(async () => {
  fx = await startAdminFixture();
});
afterAll(async () => fx?.close());

const post = (url: string, payload: object) => fx.app.inject({ method: 'POST', url, payload });
const get = (url: string) => fx.app.inject({ method: 'GET', url });

describe('entries', () => {
  it('creates, shows, updates and deletes an entry, bumping the revision on each write', async () => {
    const created = await post('/v1/entries', {
      spiffe_id: `${TD}/api`,
      parent_id: `${TD}/node1`,
      selectors: [{ type: 'unix', value: 'uid:10' }, 'unix:gid:10'],
      x509_svid_ttl: '10m',
      jwt_svid_ttl: 120,
      dns_names: ['api.example.org'],
      federates_with: ['partner.org'],
      hint: 'api',
      expires_at: 4_000_000_000,
    });
    expect(created.statusCode).toBe(201);
    const entry = created.json().entry;
    expect(entry).toMatchObject({
      spiffe_id: `${TD}/api`,
      x509_svid_ttl: 600,
      jwt_svid_ttl: 120,
      selectors: [
        { type: 'unix', value: 'gid:10' },
        { type: 'unix', value: 'uid:10' },
      ],
      federates_with: ['partner.org'],
      expires_at: 4_000_000_000,
    });
    expect((await get(`/v1/entries/${entry.id}`)).json().entry).toEqual(entry);

    const updated = await fx.app.inject({
      method: 'PATCH',
      url: `/v1/entries/${entry.id}`,
      payload: { hint: 'api-v2', admin: true },
    });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().entry).toMatchObject({ hint: 'api-v2', admin: true, spiffe_id: `${TD}/api` });
    expect(updated.json().entry.revision).toBeGreaterThan(entry.revision);

    const deleted = await fx.app.inject({ method: 'DELETE', url: `/v1/entries/${entry.id}` });
    expect(deleted.json().entry.id).toBe(entry.id);
    expect((await get(`/v1/entries/${entry.id}`)).statusCode).toBe(404);
  });

  it('makes node entries children of the server ID', async () => {
    const res = await post('/v1/entries', {
      spiffe_id: `${TD}/cluster/a`,
      node: true,
      selectors: ['k8s_sat:cluster:a'],
    });
    expect(res.json().entry.parent_id).toBe(`${TD}/sigil/server`);
  });

  it('batch-creates with per-item results in input order', async () => {
    const res = await post('/v1/entries/batch-create', {
      entries: [
        { spiffe_id: `${TD}/b1`, parent_id: `${TD}/node1`, selectors: ['unix:uid:1'] },
        { spiffe_id: 'bad', parent_id: `${TD}/node1`, selectors: ['unix:uid:1'] },
        { spiffe_id: `${TD}/b1`, parent_id: `${TD}/node1`, selectors: ['unix:uid:1'] },
        { spiffe_id: `${TD}/b2`, parent_id: `${TD}/node1`, selectors: ['unix:uid:2'] },
      ],
    });
    expect(res.statusCode).toBe(200);
    const results = res.json().results;
    expect(results.map((r: { status: number }) => r.status)).toEqual([201, 400, 409, 201]);
    expect(results[1].error.message).toContain('entries[1].spiffe_id');
    expect(results[3].entry.spiffe_id).toBe(`${TD}/b2`);

    const del = await post('/v1/entries/batch-delete', {
      ids: [results[0].entry.id, '2f1e5a34-0000-4000-8000-00000000000f'],
    });
    expect(del.json().results.map((r: { status: number }) => r.status)).toEqual([200, 404]);
  });

  it('filters by parent and selectors in every match mode, and pages through results', async () => {
    const parent = `${TD}/filters`;
    const mk = (name: string, selectors: string[]) =>
      post('/v1/entries', { spiffe_id: `${TD}/f/${name}`, parent_id: parent, selectors });
    await mk('a', ['unix:uid:1']);
    await mk('ab', ['unix:uid:1', 'unix:gid:2']);
    await mk('abc', ['unix:uid:1', 'unix:gid:2', 'unix:user:x']);
    await mk('c', ['unix:user:x']);
    const names = async (query: string) =>
      (await get(`/v1/entries?parent_id=${encodeURIComponent(parent)}&${query}`))
        .json()
        .entries.map((e: { spiffe_id: string }) => e.spiffe_id.split('/').pop())
        .sort();
    const sel = 'selector=unix:uid:1&selector=unix:gid:2';
    expect(await names(`${sel}&match=exact`)).toEqual(['ab']);
    expect(await names(`${sel}&match=subset`)).toEqual(['a', 'ab']);
    expect(await names(`${sel}&match=superset`)).toEqual(['ab', 'abc']);
    expect(await names(`${sel}&match=any`)).toEqual(['a', 'ab', 'abc']);

    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = (
        await get(
          `/v1/entries?parent_id=${encodeURIComponent(parent)}&page_size=3${token ? `&page_token=${token}` : ''}`,
        )
      ).json();
      expect(page.entries.length).toBeLessThanOrEqual(3);
      seen.push(...page.entries.map((e: { id: string }) => e.id));
      token = page.next_page_token;
    } while (token);
    expect(seen).toHaveLength(4);
    expect(new Set(seen).size).toBe(4);
  });
});

describe('join tokens and agents', () => {
  it('generates a single-use token stored with its alias and expiry', async () => {
    const res = await post('/v1/join-tokens', { ttl: '15m', spiffe_id: `${TD}/node7` });
    expect(res.statusCode).toBe(201);
    const { token, spiffe_id, expires_at } = res.json();
    expect(spiffe_id).toBe(`${TD}/node7`);
    expect(expires_at - Date.now() / 1000).toBeGreaterThan(14 * 60);
    const stored = await fx.store.fetchJoinToken(token, Date.now());
    expect(stored.spiffeId).toBe(`${TD}/node7`);
    expect(fx.logLines.join('')).not.toContain(token);
  });

  it('lists, shows, bans and evicts agents', async () => {
    const id = `${TD}/sigil/agent/join_token/abc`;
    await fx.store.upsertNode({
      spiffeId: id,
      attestationType: 'join_token',
      certSerial: '0a0b',
      certNotAfterMs: Date.now() + 3_600_000,
      selectors: [],
      banned: false,
      canReattest: false,
      createdAtMs: Date.now(),
      updatedAtMs: Date.now(),
    });
    const enc = encodeURIComponent(id);
    expect((await get('/v1/agents')).json().agents.map((a: { spiffe_id: string }) => a.spiffe_id)).toContain(
      id,
    );
    expect((await get(`/v1/agents/${enc}`)).json().agent.serial).toBe('0a0b');
    const banned = (await post(`/v1/agents/${enc}/ban`, {})).json().agent;
    expect(banned).toMatchObject({ banned: true, serial: '' });
    expect((await fx.app.inject({ method: 'DELETE', url: `/v1/agents/${enc}` })).statusCode).toBe(200);
    expect((await get(`/v1/agents/${enc}`)).statusCode).toBe(404);
  });
});

describe('bundles', () => {
  it('serves our bundle as SPIFFE JSON and PEM holding the active CA', async () => {
    const json = (await get('/v1/bundle')).body;
    const bundle = parseSpiffeBundle(json, parseTrustDomain('example.org'));
    expect(bundle.x509Authorities).toHaveLength(1);
    expect(bundle.jwtAuthorities).toHaveLength(1);
    expect(bundle.sequence).toBeGreaterThanOrEqual(1);
    const pem = (await get('/v1/bundle?format=pem')).body;
    expect(decodePemBlocks(pem, 'CERTIFICATE')[0]!.equals(bundle.x509Authorities[0]!)).toBe(true);
  });

  it('sets, lists, shows and deletes a federated bundle, in PEM and in SPIFFE form', async () => {
    const keys = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'O=Partner',
      notBefore: new Date(Date.now() - 1000),
      notAfter: new Date(Date.now() + 86_400_000),
      keys: await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const pem = keys.toString('pem');
    const set = await fx.app.inject({ method: 'PUT', url: '/v1/bundles/partner.org', payload: { pem } });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toMatchObject({ trust_domain: 'partner.org', sequence: 1 });

    // Setting it again as SPIFFE JSON moves the sequence forward.
    const asJson = encodeSpiffeBundle(bundleFromPem(parseTrustDomain('partner.org'), pem));
    const again = await fx.app.inject({
      method: 'PUT',
      url: '/v1/bundles/partner.org',
      payload: { bundle: JSON.parse(asJson) },
    });
    expect(again.json().sequence).toBe(2);

    expect(
      (await get('/v1/bundles')).json().bundles.map((b: { trust_domain: string }) => b.trust_domain),
    ).toEqual(['partner.org']);
    expect((await get('/v1/bundles/partner.org?format=pem')).body.replace(/\s/g, '')).toBe(
      pem.replace(/\s/g, ''),
    );
    expect((await fx.app.inject({ method: 'DELETE', url: '/v1/bundles/partner.org' })).statusCode).toBe(204);
    expect((await get('/v1/bundles/partner.org')).statusCode).toBe(404);
  });
});

describe('operator SVIDs', () => {
  it('mints an X.509-SVID from a CSR without ever seeing the key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keys = {
      privateKey: await crypto.subtle.importKey(
        'pkcs8',
        privateKey.export({ format: 'der', type: 'pkcs8' }),
        { name: 'ECDSA', namedCurve: 'P-256' },
        true,
        ['sign'],
      ),
      publicKey: await crypto.subtle.importKey(
        'spki',
        publicKey.export({ format: 'der', type: 'spki' }),
        { name: 'ECDSA', namedCurve: 'P-256' },
        true,
        ['verify'],
      ),
    };
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=ignored',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    const res = await post('/v1/x509-svids', {
      spiffe_id: `${TD}/batch`,
      csr: csr.toString('pem'),
      ttl: '5m',
      dns_names: ['batch.example.org'],
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.key_pem).toBeUndefined();
    const chain = decodePemBlocks(body.svid_pem, 'CERTIFICATE');
    const anchors = decodePemBlocks(body.bundle_pem, 'CERTIFICATE');
    const verified = verifyX509Svid(chain, () => anchors, Date.now());
    expect(verified.spiffeId.toString()).toBe(`${TD}/batch`);
    const leaf = new x509.X509Certificate(chain[0]!);
    expect(
      Buffer.from(leaf.publicKey.rawData).equals(publicKey.export({ format: 'der', type: 'spki' })),
    ).toBe(true);
    expect(body.expires_at - Date.now() / 1000).toBeLessThanOrEqual(5 * 60 + 1);
  });

  it('mints a key pair when no CSR is given, and never logs the key', async () => {
    const res = await post('/v1/x509-svids', { spiffe_id: `${TD}/tool` });
    const body = res.json();
    const key = createPrivateKey(body.key_pem);
    expect(key.asymmetricKeyType).toBe('ec');
    expect(fx.logLines.join('')).not.toContain(body.key_pem.split('\n')[1]);
  });

  it('mints a JWT-SVID that validates against our bundle for its audience only', async () => {
    const res = await post('/v1/jwt-svids', {
      spiffe_id: `${TD}/web`,
      audience: ['billing', 'audit'],
      ttl: '2m',
    });
    expect(res.statusCode).toBe(200);
    const bundle = parseSpiffeBundle((await get('/v1/bundle')).body, parseTrustDomain('example.org'));
    const ok = validateJwtSvid(res.json().token, {
      audience: 'audit',
      bundleFor: () => bundle,
      nowMs: Date.now(),
    });
    expect(ok.spiffeId.toString()).toBe(`${TD}/web`);
    expect(() =>
      validateJwtSvid(res.json().token, { audience: 'other', bundleFor: () => bundle, nowMs: Date.now() }),
    ).toThrow(expect.objectContaining({ code: 'ERR_JWT_AUDIENCE' }));
  });
});

describe('health and metrics', () => {
  it('reports ready and exposes issuance counters', async () => {
    expect((await get('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await get('/readyz')).statusCode).toBe(200);
    const metrics = (await get('/metrics')).body;
    expect(metrics).toMatch(/sigil_server_svids_issued_total\{type="x509",caller="admin"\} [1-9]/);
    expect(metrics).toMatch(/sigil_server_svid_issue_duration_seconds_count\{type="jwt"\} [1-9]/);
    expect(metrics).toMatch(/sigil_server_entries \d+/);
  });

  it('serves the OpenAPI document at /docs', async () => {
    const doc = (await get('/docs/json')).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/entries', '/v1/join-tokens', '/v1/x509-svids']),
    );
    expect((await get('/docs')).statusCode).toBeLessThan(400);
  });
});
