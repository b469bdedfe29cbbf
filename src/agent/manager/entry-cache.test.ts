import { describe, expect, it } from 'vitest';
import { makeSelector } from '../../spiffe/selector.js';
import { testEntry } from './entries.test-support.js';
import { EntryCache } from './entry-cache.js';
import type { AgentEntry } from './types.js';

const s = (value: string) => makeSelector('k8s', value);

const entry = (id: string, selectors: string[], overrides: Partial<AgentEntry> = {}) =>
  testEntry(id, { parentId: 'spiffe://example.org/agent', selectors: selectors.map(s), ...overrides });

function cacheWith(...entries: AgentEntry[]): EntryCache {
  const cache = new EntryCache();
  cache.apply({ snapshot: true, upserted: entries, deletedIds: [], revision: 1 });
  return cache;
}

describe('EntryCache matching', () => {
  const cache = cacheWith(
    entry('b-web', ['ns:prod', 'sa:web']),
    entry('a-any-prod', ['ns:prod']),
    entry('c-db', ['ns:prod', 'sa:db']),
    entry('d-other', ['ns:dev']),
  );

  it('matches entries whose selectors are all among the workload selectors, sorted by entry id', () => {
    expect(cache.matching([s('sa:web'), s('ns:prod'), s('pod:x')]).map((e) => e.id)).toEqual([
      'a-any-prod',
      'b-web',
    ]);
    expect(cache.matching([s('sa:web')]).map((e) => e.id)).toEqual([]);
    expect(cache.matching([]).map((e) => e.id)).toEqual([]);
  });

  it('lists near matches with the selectors they lack', () => {
    const near = cache.nearMatches([s('ns:prod'), s('sa:api')]);
    expect(near.map((n) => [n.entry.id, n.missing.map((m) => m.value)])).toEqual([
      ['b-web', ['sa:web']],
      ['c-db', ['sa:db']],
    ]);
  });

  it('classifies changes: SVID-relevant fields versus metadata', () => {
    const c = cacheWith(entry('web', ['sa:web']));
    const meta = c.apply({
      snapshot: false,
      upserted: [entry('web', ['sa:web', 'ns:x'], { hint: 'h', admin: true, revision: 2 })],
      deletedIds: [],
      revision: 2,
    });
    expect(meta).toEqual({ removed: [], needSvid: [], any: true });
    expect(c.matching([s('sa:web')])).toEqual([]);
    for (const change of [
      { spiffeId: 'spiffe://example.org/x' },
      { dnsNames: ['a.example'] },
      { x509SvidTtlMs: 1 },
    ]) {
      const result = c.apply({
        snapshot: false,
        upserted: [entry('web', ['sa:web'], change)],
        deletedIds: [],
        revision: 3,
      });
      expect(result.needSvid).toEqual(['web']);
    }
    expect(
      c.apply({ snapshot: false, upserted: [], deletedIds: ['web', 'nope'], revision: 4 }).removed,
    ).toEqual(['web']);
    expect(c.size).toBe(0);
  });
});
