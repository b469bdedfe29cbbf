// An authorized entry as the server pushes it, with plain defaults, for the manager's tests.
import { makeSelector } from '../../spiffe/selector.js';
import type { AgentEntry } from './types.js';

/** `spiffe://example.org/<id>`, selected by `unix:uid:<id>` unless `overrides` say otherwise. */
export function testEntry(id: string, overrides: Partial<AgentEntry> = {}): AgentEntry {
  return {
    id,
    spiffeId: `spiffe://example.org/${id}`,
    parentId: 'spiffe://example.org/spire/agent/x/node1',
    selectors: [makeSelector('unix', `uid:${id}`)],
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    hint: '',
    expiresAtMs: null,
    revision: 1,
    ...overrides,
  };
}
