// Store entries to agent API messages.
import type { WireEntry } from '../../../../proto/agent-api.js';
import type { RegistrationEntry } from '../../datastore/types.js';

export function entryToWire(entry: RegistrationEntry): WireEntry {
  return {
    id: entry.id,
    spiffeId: entry.spiffeId,
    parentId: entry.parentId,
    selectors: entry.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509SvidTtl: Math.round(entry.x509SvidTtlMs / 1000),
    jwtSvidTtl: Math.round(entry.jwtSvidTtlMs / 1000),
    dnsNames: [...entry.dnsNames],
    federatesWith: [...entry.federatesWith],
    admin: entry.admin,
    downstream: entry.downstream,
    hint: entry.hint,
    expiresAt: entry.expiresAtMs === null ? 0 : Math.floor(entry.expiresAtMs / 1000),
    revision: entry.revision,
  };
}
