// Checks and normalises what callers hand to an EntryStore before any engine touches it, so SQLite
// and PostgreSQL accept and refuse exactly the same input. Field-level rules the admin API already
// enforces (SPIFFE ID syntax, TTL limits) are not repeated here; these are the rules the storage
// format itself depends on.
import { randomUUID } from 'node:crypto';
import { quote, SigilError } from '../../spiffe/errors.js';
import { canonicalSelectors, formatSelector, makeSelector, type Selector } from '../../spiffe/selector.js';
import {
  type EntryFilter,
  type EntryUpdate,
  MAX_FILTER_SELECTORS,
  type NewEntry,
  type RegistrationEntry,
  type SelectorMatch,
} from './types.js';

/** The entry fields an engine stores, validated and canonical; the engine adds revision and createdAtMs. */
export type EntryFields = Omit<RegistrationEntry, 'revision' | 'createdAtMs'>;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function prepareNewEntry(entry: NewEntry): EntryFields {
  const id = entry.id ?? randomUUID();
  if (typeof id !== 'string' || !UUID_PATTERN.test(id)) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `id: ${quote(id)} must be a lowercase UUID (e.g. from randomUUID)`,
      {
        field: 'id',
        reason: 'entry-id',
      },
    );
  }
  return checkedFields({
    id,
    spiffeId: entry.spiffeId,
    parentId: entry.parentId,
    selectors: prepareSelectors(entry.selectors, 'selectors'),
    x509SvidTtlMs: entry.x509SvidTtlMs,
    jwtSvidTtlMs: entry.jwtSvidTtlMs,
    dnsNames: entry.dnsNames,
    federatesWith: entry.federatesWith,
    admin: entry.admin,
    downstream: entry.downstream,
    hint: entry.hint,
    expiresAtMs: entry.expiresAtMs,
  });
}

/** The stored entry with `update` applied; fields absent (or undefined) in `update` keep their value. */
export function applyEntryUpdate(current: RegistrationEntry, update: EntryUpdate): EntryFields {
  return checkedFields({
    id: current.id,
    spiffeId: update.spiffeId ?? current.spiffeId,
    parentId: update.parentId ?? current.parentId,
    selectors:
      update.selectors === undefined ? current.selectors : prepareSelectors(update.selectors, 'selectors'),
    x509SvidTtlMs: update.x509SvidTtlMs ?? current.x509SvidTtlMs,
    jwtSvidTtlMs: update.jwtSvidTtlMs ?? current.jwtSvidTtlMs,
    dnsNames: update.dnsNames ?? current.dnsNames,
    federatesWith: update.federatesWith ?? current.federatesWith,
    admin: update.admin ?? current.admin,
    downstream: update.downstream ?? current.downstream,
    hint: update.hint ?? current.hint,
    // null is a real value here ("never expires"), so only undefined means "keep".
    expiresAtMs: update.expiresAtMs === undefined ? current.expiresAtMs : update.expiresAtMs,
  });
}

/**
 * Validated, canonical (sorted, de-duplicated) and non-empty: an entry without selectors would match
 * every workload under a "subset" query, which is never what an operator means.
 */
export function prepareSelectors(selectors: readonly Selector[], field: string): readonly Selector[] {
  const list = prepareSelectorList(selectors, field);
  if (list.length === 0) {
    throw new SigilError('ERR_INPUT_INVALID', `${field}: at least one selector is required`, {
      field,
      reason: 'selectors-empty',
    });
  }
  return list;
}

/** Validated and canonical; may be empty. */
export function prepareSelectorList(selectors: readonly Selector[], field: string): readonly Selector[] {
  if (!Array.isArray(selectors)) {
    throw new SigilError('ERR_INPUT_INVALID', `${field}: must be a list of selectors`, {
      field,
      reason: 'selectors-type',
    });
  }
  const valid = selectors.map((s, i) => makeSelector(s?.type, s?.value, `${field}[${i}]`));
  return Object.freeze(canonicalSelectors(valid));
}

/**
 * The duplicate-detection key: canonical selectors joined by newlines. Unambiguous because a type
 * has no ":" and makeSelector refuses control characters in values.
 */
export function selectorsKey(selectors: readonly Selector[]): string {
  return selectors.map(formatSelector).join('\n');
}

/** Inverse of selectorsKey, for engines that read selectors back from the key column. */
export function selectorsFromKey(key: string): readonly Selector[] {
  return Object.freeze(
    key.split('\n').map((s) => {
      const colon = s.indexOf(':');
      return Object.freeze({ type: s.slice(0, colon), value: s.slice(colon + 1) });
    }),
  );
}

const SELECTOR_MATCHES: readonly SelectorMatch[] = ['exact', 'subset', 'superset', 'any'];

/** A filter with its selectors canonical and its match mode checked, ready for an engine's query. */
export function prepareEntryFilter(filter: EntryFilter): EntryFilter {
  if (filter.selectors === undefined) return filter;
  const { match, selectors } = filter.selectors;
  if (Array.isArray(selectors) && selectors.length > MAX_FILTER_SELECTORS) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `selectors.selectors: at most ${MAX_FILTER_SELECTORS} selectors per query (got ${selectors.length})`,
      { field: 'selectors.selectors', reason: 'too-many-selectors' },
    );
  }
  if (!SELECTOR_MATCHES.includes(match)) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `selectors.match: ${quote(match)} must be one of ${SELECTOR_MATCHES.join(', ')}`,
      { field: 'selectors.match', reason: 'selector-match' },
    );
  }
  return {
    ...filter,
    selectors: { match, selectors: prepareSelectors(selectors, 'selectors.selectors') },
  };
}

/** Names an entry in error messages by what makes it unique. */
export function describeEntry(e: Pick<EntryFields, 'spiffeId' | 'parentId' | 'selectors'>): string {
  return `an entry with spiffe_id ${quote(e.spiffeId)}, parent_id ${quote(e.parentId)} and selectors ${quote(e.selectors.map(formatSelector).join(','))}`;
}

/** Checks the types the storage format relies on, then freezes. */
function checkedFields(fields: EntryFields): EntryFields {
  for (const [field, value] of [
    ['spiffe_id', fields.spiffeId],
    ['parent_id', fields.parentId],
    ['hint', fields.hint],
  ] as const) {
    if (typeof value !== 'string') throw invalid(field, `must be a string (got ${quote(value)})`);
  }
  for (const [field, value] of [
    ['x509_svid_ttl_ms', fields.x509SvidTtlMs],
    ['jwt_svid_ttl_ms', fields.jwtSvidTtlMs],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw invalid(field, `must be a non-negative integer (got ${quote(value)})`);
    }
  }
  if (fields.expiresAtMs !== null && !Number.isSafeInteger(fields.expiresAtMs)) {
    throw invalid('expires_at_ms', `must be an integer or null (got ${quote(fields.expiresAtMs)})`);
  }
  for (const [field, list] of [
    ['dns_names', fields.dnsNames],
    ['federates_with', fields.federatesWith],
  ] as const) {
    if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) {
      throw invalid(field, 'must be a list of strings');
    }
  }
  if (typeof fields.admin !== 'boolean' || typeof fields.downstream !== 'boolean') {
    throw invalid(typeof fields.admin !== 'boolean' ? 'admin' : 'downstream', 'must be true or false');
  }
  return Object.freeze({
    ...fields,
    dnsNames: Object.freeze([...fields.dnsNames]),
    federatesWith: Object.freeze([...fields.federatesWith]),
  });
}

function invalid(field: string, rule: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `${field}: ${rule}`, { field, reason: 'entry-field' });
}
