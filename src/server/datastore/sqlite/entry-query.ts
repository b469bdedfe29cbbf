// Builds the SQL for listEntries. Every filter is a WHERE clause evaluated by SQLite against indexes
// (registered_entries (parent_id, id) / (spiffe_id, id), entry_selectors (type, value)), and pages
// are keyset ranges on id, so a listing never loads rows it does not return.
import type { Selector } from '../../../spiffe/selector.js';
import { selectorsKey } from '../entry-input.js';
import type { PageRequest } from '../page.js';
import type { EntryFilter, SelectorMatch } from '../types.js';

export interface EntryQuery {
  readonly sql: string;
  readonly params: readonly (string | number)[];
}

/** `filter` must come from prepareEntryFilter (selectors canonical and non-empty, match known). */
export function buildEntryQuery(filter: EntryFilter, page: PageRequest): EntryQuery {
  const where: string[] = [];
  const params: (string | number)[] = [];
  let withSql = '';
  if (filter.selectors !== undefined) {
    // The wanted selectors as a table (q), bound once: joins against it scale to MAX_FILTER_SELECTORS,
    // where a chain of ORs would exceed SQLite's expression depth limit.
    const { selectors, match } = filter.selectors;
    withSql = `WITH q (type, value) AS (VALUES ${selectors.map(() => '(?, ?)').join(', ')}) `;
    params.push(...selectors.flatMap((s) => [s.type, s.value]));
    const clause = selectorClause(selectors, match);
    where.push(clause.sql);
    params.push(...clause.params);
  }
  if (filter.spiffeId !== undefined) {
    where.push('e.spiffe_id = ?');
    params.push(filter.spiffeId);
  }
  if (filter.parentId !== undefined) {
    where.push('e.parent_id = ?');
    params.push(filter.parentId);
  }
  if (page.after !== null) {
    where.push('e.id > ?');
    params.push(page.after);
  }
  const whereSql = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
  // One extra row tells the caller whether a next page exists without a second query.
  params.push(page.size + 1);
  return { sql: `${withSql}SELECT e.* FROM registered_entries e ${whereSql} ORDER BY e.id LIMIT ?`, params };
}

/** The WHERE clause for a selector match, against the CTE q holding the wanted selectors. */
function selectorClause(selectors: readonly Selector[], match: SelectorMatch): EntryQuery {
  // Entries holding at least one wanted selector: the index-driven candidate set for every mode.
  const anyOf =
    'e.id IN (SELECT s.entry_id FROM q JOIN entry_selectors s ON s.type = q.type AND s.value = q.value)';
  // Entries holding all of them: (entry_id, type, value) is the primary key, so counting is exact.
  const allOf = `e.id IN (SELECT s.entry_id FROM q JOIN entry_selectors s ON s.type = q.type AND s.value = q.value
    GROUP BY s.entry_id HAVING COUNT(*) = ?)`;
  switch (match) {
    case 'any':
      return { sql: anyOf, params: [] };
    case 'superset':
      return { sql: allOf, params: [selectors.length] };
    case 'exact':
      return { sql: `${allOf} AND e.selectors_key = ?`, params: [selectors.length, selectorsKey(selectors)] };
    case 'subset':
      // Entries always have at least one selector, so "all of mine are among these" implies "any".
      return {
        sql: `${anyOf} AND NOT EXISTS (SELECT 1 FROM entry_selectors x WHERE x.entry_id = e.id
          AND NOT EXISTS (SELECT 1 FROM q WHERE q.type = x.type AND q.value = x.value))`,
        params: [],
      };
  }
}
