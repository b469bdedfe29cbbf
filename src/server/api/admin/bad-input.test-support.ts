// The bad-input tables' shared runner: one admin app over a real store and CA, one existing entry to
// update, and for every case the 4xx it must get, naming the problem, with the store left exactly
// as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminFixture, startAdminFixture } from '../../../../test/support/admin-app.js';

export const TD = 'spiffe://example.org';
export const good = { spiffe_id: `${TD}/web`, parent_id: `${TD}/node1`, selectors: ['unix:uid:1000'] };

export interface Case {
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

/** A valid entry body (not the stored one) with `patch` applied. */
export const entry = (patch: Record<string, unknown>) => ({ ...good, spiffe_id: `${TD}/other`, ...patch });

let existingId = '';
/** The id of the stored entry, for update cases (valid once the table runs). */
export const existingEntryUrl = () => `/v1/entries/${existingId}`;

export function describeBadInput(title: string, cases: readonly Case[], minimumCases: number): void {
  let fx: AdminFixture;
  beforeAll(async () => {
    fx = await startAdminFixture();
    const res = await fx.app.inject({ method: 'POST', url: '/v1/entries', payload: good });
    expect(res.statusCode).toBe(201);
    existingId = res.json().entry.id;
  });
  afterAll(async () => fx?.close());

  describe(title, () => {
    it.each(cases)('$name → $status $code', async (c) => {
      const revisionBefore = await fx.store.currentRevision();
      const countBefore = await fx.store.countEntries();
      const bundlesBefore = (await fx.store.listBundles()).length;
      const tokensBefore = (await fx.store.listJoinTokens()).length;
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
      expect((await fx.store.listJoinTokens()).length).toBe(tokensBefore);
    });

    it(`has at least ${minimumCases} distinct cases`, () => {
      expect(new Set(cases.map((c) => c.name)).size).toBeGreaterThanOrEqual(minimumCases);
    });
  });
}
