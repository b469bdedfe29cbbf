// Converts admin REST entry bodies (snake_case, durations in any unit, selectors as objects or
// strings) to store entries and back. Every rule broken is a SigilError naming the field.

import { checkOperatorDnsName } from '../../../spiffe/dns-name.js';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { parseSpiffeId, parseTrustDomain, type SpiffeId, type TrustDomain } from '../../../spiffe/id.js';
import { canonicalSelectors, makeSelector, parseSelector, type Selector } from '../../../spiffe/selector.js';
import { checkNotReserved, serverSpiffeId } from '../../../spiffe/sigil-ids.js';
import { unsafeCharacterIn } from '../../../spiffe/text.js';
import type { EntryUpdate, NewEntry, RegistrationEntry } from '../../datastore/types.js';
import { svidTtlMs } from './ttl.js';

/** SPIFFE recommends hints of at most 1024 bytes. */
const MAX_HINT_BYTES = 1024;

export type SelectorInput = string | { type: string; value: string };

export interface EntryInput {
  id?: string;
  spiffe_id?: string;
  parent_id?: string;
  node?: boolean;
  selectors?: SelectorInput[];
  x509_svid_ttl?: number | string;
  jwt_svid_ttl?: number | string;
  dns_names?: string[];
  federates_with?: string[];
  admin?: boolean;
  downstream?: boolean;
  hint?: string;
  expires_at?: number | null;
}

export interface EntryView {
  id: string;
  spiffe_id: string;
  parent_id: string;
  selectors: Selector[];
  x509_svid_ttl: number;
  jwt_svid_ttl: number;
  dns_names: string[];
  federates_with: string[];
  admin: boolean;
  downstream: boolean;
  hint: string;
  expires_at: number | null;
  revision: number;
  created_at: number;
}

export function entryToView(entry: RegistrationEntry): EntryView {
  return {
    id: entry.id,
    spiffe_id: entry.spiffeId,
    parent_id: entry.parentId,
    selectors: entry.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509_svid_ttl: Math.round(entry.x509SvidTtlMs / 1000),
    jwt_svid_ttl: Math.round(entry.jwtSvidTtlMs / 1000),
    dns_names: [...entry.dnsNames],
    federates_with: [...entry.federatesWith],
    admin: entry.admin,
    downstream: entry.downstream,
    hint: entry.hint,
    expires_at: entry.expiresAtMs === null ? null : Math.floor(entry.expiresAtMs / 1000),
    revision: entry.revision,
    created_at: Math.floor(entry.createdAtMs / 1000),
  };
}

/** What checking an entry body depends on besides the body. */
export interface EntryInputContext {
  readonly trustDomain: TrustDomain;
  /** expires_at must lie after this. */
  readonly nowMs: number;
  /** The server's min_svid_ttl: shortest x509_svid_ttl / jwt_svid_ttl accepted (0 still means default). */
  readonly minSvidTtlMs: number;
}

/** A full entry for create; `field` prefixes paths in batch bodies (e.g. "entries[3]"). */
export function entryFromInput(input: EntryInput, context: EntryInputContext, field = 'body'): NewEntry {
  if (input.spiffe_id === undefined) throw missing(`${field}.spiffe_id`);
  if (input.selectors === undefined) throw missing(`${field}.selectors`);
  if (input.parent_id === undefined && input.node !== true) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `${field}.parent_id: is required (or set "node": true for a node entry)`,
      {
        field: `${field}.parent_id`,
      },
    );
  }
  const update = entryUpdateFromInput(input, context, field);
  return {
    ...(input.id !== undefined ? { id: input.id } : {}),
    spiffeId: update.spiffeId!,
    parentId: update.parentId!,
    selectors: update.selectors!,
    x509SvidTtlMs: update.x509SvidTtlMs ?? 0,
    jwtSvidTtlMs: update.jwtSvidTtlMs ?? 0,
    dnsNames: update.dnsNames ?? [],
    federatesWith: update.federatesWith ?? [],
    admin: update.admin ?? false,
    downstream: update.downstream ?? false,
    hint: update.hint ?? '',
    expiresAtMs: update.expiresAtMs ?? null,
  };
}

/** Only the fields present in `input`. */
export function entryUpdateFromInput(
  input: EntryInput,
  context: EntryInputContext,
  field = 'body',
): EntryUpdate {
  const { trustDomain, minSvidTtlMs } = context;
  const update: { -readonly [K in keyof EntryUpdate]: EntryUpdate[K] } = {};
  if (input.node === true && input.parent_id !== undefined) {
    throw new SigilError('ERR_INPUT_INVALID', `${field}: give either parent_id or "node": true, not both`, {
      field: `${field}.node`,
    });
  }
  if (input.spiffe_id !== undefined) {
    const path = `${field}.spiffe_id`;
    update.spiffeId = checkNotReserved(memberId(input.spiffe_id, trustDomain, path), path).toString();
  }
  if (input.node === true) update.parentId = serverSpiffeId(trustDomain).toString();
  else if (input.parent_id !== undefined) {
    update.parentId = memberId(input.parent_id, trustDomain, `${field}.parent_id`).toString();
  }
  if (input.selectors !== undefined)
    update.selectors = selectorsFromInput(input.selectors, `${field}.selectors`);
  if (input.x509_svid_ttl !== undefined)
    update.x509SvidTtlMs = ttl(input.x509_svid_ttl, `${field}.x509_svid_ttl`, minSvidTtlMs);
  if (input.jwt_svid_ttl !== undefined)
    update.jwtSvidTtlMs = ttl(input.jwt_svid_ttl, `${field}.jwt_svid_ttl`, minSvidTtlMs);
  if (input.dns_names !== undefined) {
    update.dnsNames = input.dns_names.map((name, i) => {
      checkOperatorDnsName(name, `${field}.dns_names[${i}]`);
      return name;
    });
  }
  if (input.federates_with !== undefined) {
    update.federatesWith = [
      ...new Set(
        input.federates_with.map((td, i) => parseTrustDomain(td, `${field}.federates_with[${i}]`).name),
      ),
    ];
    if (update.federatesWith.includes(trustDomain.name)) {
      throw new SigilError(
        'ERR_INPUT_INVALID',
        `${field}.federates_with: cannot federate with our own trust domain`,
        {
          field: `${field}.federates_with`,
        },
      );
    }
  }
  if (input.admin !== undefined) update.admin = input.admin;
  if (input.downstream !== undefined) update.downstream = input.downstream;
  if (input.hint !== undefined) update.hint = hint(input.hint, `${field}.hint`);
  if (input.expires_at !== undefined) {
    update.expiresAtMs = expiresAtMs(input.expires_at, `${field}.expires_at`, context.nowMs);
  }
  return update;
}

export function selectorsFromInput(inputs: readonly SelectorInput[], field: string): Selector[] {
  if (inputs.length === 0) {
    throw new SigilError('ERR_SELECTOR_INVALID', `${field}: at least one selector is required`, { field });
  }
  return canonicalSelectors(
    inputs.map((s, i) =>
      typeof s === 'string'
        ? parseSelector(s, `${field}[${i}]`)
        : makeSelector(s.type, s.value, `${field}[${i}]`),
    ),
  );
}

/** IDs in entries must belong to our trust domain and name a workload (non-root path). */
function memberId(input: string, trustDomain: TrustDomain, field: string): SpiffeId {
  const id = parseSpiffeId(input, field);
  if (!id.trustDomain.equals(trustDomain)) {
    throw new SigilError(
      'ERR_SPIFFE_ID_INVALID',
      `${field}: ${quote(input)} is not in this server's trust domain "${trustDomain.name}"`,
      { field, reason: 'foreign-trust-domain' },
    );
  }
  if (id.isTrustDomainId) {
    throw new SigilError('ERR_SPIFFE_ID_INVALID', `${field}: ${quote(input)} must have a path`, {
      field,
      reason: 'no-path',
    });
  }
  return id;
}

function ttl(input: number | string, field: string, minMs: number): number {
  // 0 is allowed here and means "use the server default".
  if (input === 0 || input === '0') return 0;
  return svidTtlMs(input, field, minMs);
}

function hint(input: string, field: string): string {
  if (Buffer.byteLength(input) > MAX_HINT_BYTES) {
    throw new SigilError('ERR_INPUT_INVALID', `${field}: is longer than ${MAX_HINT_BYTES} bytes`, { field });
  }
  const unsafe = unsafeCharacterIn(input);
  if (unsafe !== undefined) {
    throw new SigilError('ERR_INPUT_INVALID', `${field}: ${quote(input)} contains a ${unsafe}`, {
      field,
      reason: 'unsafe-character',
    });
  }
  return input;
}

/** An expiry in the past would be pruned at once: almost certainly a mistake (seconds vs milliseconds?). */
function expiresAtMs(input: number | null, field: string, nowMs: number): number | null {
  if (input === null) return null;
  const ms = input * 1000;
  if (ms <= nowMs) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `${field}: ${input} (${new Date(ms).toISOString()}) is not in the future; give Unix seconds after now, or null for no expiry`,
      { field, reason: 'expires-in-past' },
    );
  }
  return ms;
}

function missing(field: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `${field}: is required`, { field });
}
