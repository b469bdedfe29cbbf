// Conformance: listEntries filters (each selector match mode, combinations) and pagination.
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type DataStore,
  DEFAULT_PAGE_SIZE,
  MAX_FILTER_SELECTORS,
  MAX_PAGE_SIZE,
  type Page,
  type SelectorMatch,
} from '../types.js';
import {
  type ConformanceContext,
  expectCode,
  listAll,
  newEntry,
  OTHER_PARENT,
  PARENT,
  sels,
  TD,
} from './support.js';

export function describeEntryListingConformance(ctx: ConformanceContext): void {
  let store: DataStore;
  beforeEach(() => {
    store = ctx.store;
  });

  describe('entries: filters', () => {
    // Built so each mode gives a different answer for the query {a:1, b:2}, and selectors that
    // share only a type or only a value (b:1, a:2) catch a match on one column.
    const FIXTURE: Record<string, string[]> = {
      A: ['a:1'],
      B: ['a:1', 'b:2'],
      C: ['a:1', 'b:2', 'c:3'],
      D: ['b:2'],
      E: ['d:4'],
      F: ['a:1', 'd:4'],
      G: ['b:1'],
      H: ['a:2', 'b:1'],
    };
    const EXPECTED: Record<SelectorMatch, string[]> = {
      exact: ['B'],
      subset: ['A', 'B', 'D'],
      superset: ['B', 'C'],
      any: ['A', 'B', 'C', 'D', 'F'],
    };

    async function createFixture(parentOf: (label: string) => string = () => PARENT) {
      const labels = new Map<string, string>();
      for (const [label, selectors] of Object.entries(FIXTURE)) {
        const e = await store.createEntry(
          newEntry({
            spiffeId: `${TD}/w/${label}`,
            parentId: parentOf(label),
            selectors: sels(...selectors),
          }),
        );
        labels.set(e.id, label);
      }
      return labels;
    }

    for (const match of ['exact', 'subset', 'superset', 'any'] as const) {
      it(`selector match "${match}" returns exactly the expected entries`, async () => {
        const labels = await createFixture();
        // Query selectors out of canonical order and repeated: the store must canonicalise.
        const result = await store.listEntries({
          selectors: { selectors: sels('b:2', 'a:1', 'b:2'), match },
        });
        expect(result.items.map((e) => labels.get(e.id)).sort()).toEqual(EXPECTED[match]);
        expect(result.nextPageToken).toBeUndefined();
      });
    }

    it('filters by spiffe id and by parent id', async () => {
      const labels = await createFixture((l) => (['A', 'C', 'E'].includes(l) ? OTHER_PARENT : PARENT));
      const byParent = await store.listEntries({ parentId: OTHER_PARENT });
      expect(byParent.items.map((e) => labels.get(e.id)).sort()).toEqual(['A', 'C', 'E']);
      const bySpiffeId = await store.listEntries({ spiffeId: `${TD}/w/D` });
      expect(bySpiffeId.items.map((e) => labels.get(e.id))).toEqual(['D']);
    });

    it('combines filters with AND', async () => {
      const labels = await createFixture((l) => (['A', 'C', 'E'].includes(l) ? OTHER_PARENT : PARENT));
      const superset = await store.listEntries({
        parentId: PARENT,
        selectors: { selectors: sels('a:1', 'b:2'), match: 'superset' },
      });
      expect(superset.items.map((e) => labels.get(e.id))).toEqual(['B']);
      const any = await store.listEntries({
        parentId: OTHER_PARENT,
        selectors: { selectors: sels('a:1', 'b:2'), match: 'any' },
      });
      expect(any.items.map((e) => labels.get(e.id)).sort()).toEqual(['A', 'C']);
      const both = await store.listEntries({ spiffeId: `${TD}/w/C`, parentId: PARENT });
      expect(both.items).toEqual([]);
      const all3 = await store.listEntries({
        spiffeId: `${TD}/w/C`,
        parentId: OTHER_PARENT,
        selectors: { selectors: sels('c:3'), match: 'subset' },
      });
      expect(all3.items).toEqual([]);
    });

    it('refuses an unknown match mode, an empty selector list and too many selectors', async () => {
      await expectCode(
        store.listEntries({ selectors: { selectors: sels('a:1'), match: 'most' as SelectorMatch } }),
        'ERR_INPUT_INVALID',
      );
      await expectCode(
        store.listEntries({ selectors: { selectors: [], match: 'any' } }),
        'ERR_INPUT_INVALID',
      );
      const many = Array.from({ length: MAX_FILTER_SELECTORS + 1 }, (_, i) => ({
        type: 'unix',
        value: `uid:${i}`,
      }));
      await expectCode(
        store.listEntries({ selectors: { selectors: many, match: 'subset' } }),
        'ERR_INPUT_INVALID',
      );
    });

    it(`answers a query with ${MAX_FILTER_SELECTORS} selectors`, async () => {
      const created = await store.createEntry(newEntry({ selectors: sels('unix:uid:999', 'unix:uid:3') }));
      const many = Array.from({ length: MAX_FILTER_SELECTORS }, (_, i) => ({
        type: 'unix',
        value: `uid:${i}`,
      }));
      for (const match of ['subset', 'any'] as const) {
        const result = await store.listEntries({ selectors: { selectors: many, match } });
        expect(result.items.map((e) => e.id)).toEqual([created.id]);
      }
    });
  });

  describe('entries: pagination', () => {
    it('pages through 250 entries in id order with nothing lost or repeated', async () => {
      const created = await store.createEntries(
        Array.from({ length: 250 }, (_, i) =>
          newEntry({ parentId: i % 2 === 0 ? PARENT : OTHER_PARENT, selectors: sels(`unix:uid:${i}`) }),
        ),
      );
      const ids = created.map((r) => (r.ok ? r.value.id : 'failed')).sort();
      const pages: number[] = [];
      let page: Page = {};
      const seen: string[] = [];
      for (;;) {
        const result = await store.listEntries({}, page);
        pages.push(result.items.length);
        seen.push(...result.items.map((e) => e.id));
        if (result.nextPageToken === undefined) break;
        page = { pageToken: result.nextPageToken };
      }
      expect(pages).toEqual([DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE, 50]);
      expect(seen).toEqual(ids);

      const filtered = await listAll(store, { parentId: OTHER_PARENT }, 40);
      expect(filtered).toHaveLength(125);
      expect(new Set(filtered.map((e) => e.id)).size).toBe(125);
      expect(filtered.every((e) => e.parentId === OTHER_PARENT)).toBe(true);
      expect(filtered.map((e) => e.id)).toEqual([...filtered.map((e) => e.id)].sort());
    });

    it('ends without a token when the last page is exactly full', async () => {
      await store.createEntries(
        Array.from({ length: 4 }, (_, i) => newEntry({ selectors: sels(`unix:uid:${i}`) })),
      );
      const first = await store.listEntries({}, { pageSize: 2 });
      expect(first.nextPageToken).toBeDefined();
      const second = await store.listEntries({}, { pageSize: 2, pageToken: first.nextPageToken });
      expect(second.items).toHaveLength(2);
      expect(second.nextPageToken).toBeUndefined();
    });

    it('keeps paging correctly when the last returned entry is deleted in between', async () => {
      await store.createEntries(
        Array.from({ length: 6 }, (_, i) => newEntry({ selectors: sels(`unix:uid:${i}`) })),
      );
      const all = (await store.listEntries({})).items.map((e) => e.id);
      const first = await store.listEntries({}, { pageSize: 3 });
      await store.deleteEntry(first.items[2]!.id);
      const rest = await store.listEntries({}, { pageSize: 3, pageToken: first.nextPageToken });
      expect(rest.items.map((e) => e.id)).toEqual(all.slice(3));
    });

    it(`caps the page size at ${MAX_PAGE_SIZE}`, async () => {
      await store.createEntries(
        Array.from({ length: MAX_PAGE_SIZE + 1 }, (_, i) => newEntry({ selectors: sels(`unix:uid:${i}`) })),
      );
      const result = await store.listEntries({}, { pageSize: MAX_PAGE_SIZE * 5 });
      expect(result.items).toHaveLength(MAX_PAGE_SIZE);
      expect(result.nextPageToken).toBeDefined();
    });

    it('refuses a bad page size or page token', async () => {
      await expectCode(store.listEntries({}, { pageSize: 0 }), 'ERR_INPUT_INVALID');
      await expectCode(store.listEntries({}, { pageSize: 1.5 }), 'ERR_INPUT_INVALID');
      await expectCode(store.listEntries({}, { pageToken: 'not a token!' }), 'ERR_INPUT_INVALID');
      await expectCode(store.listNodes({ pageToken: '%%%' }), 'ERR_INPUT_INVALID');
    });
  });
}
