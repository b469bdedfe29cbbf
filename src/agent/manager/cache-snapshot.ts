// Converts between the SVID cache's records and their persisted form (persisted-cache.ts). A record
// restored from disk is rebuilt as a fresh mint would build it (its chain already parsed by the
// decoder), except that its renewal time and the entry fields it was minted for come from the file: the renewal jitter is drawn once, at
// mint, and an SVID minted for an entry that has changed since must still be replaced.
import type { PersistedSvid } from './persisted-cache.js';
import type { CachedSvid } from './svid-cache.js';
import type { AgentEntry } from './types.js';

export function toPersistedSvid(svid: CachedSvid): PersistedSvid {
  return {
    entryId: svid.entryId,
    fieldsKey: svid.fieldsKey,
    spiffeId: svid.spiffeId,
    chain: svid.chain,
    key: svid.key,
    renewAtMs: svid.renewAtMs,
    notBeforeMs: svid.notBeforeMs,
    expiresAtMs: svid.expiresAtMs,
    serialHex: svid.serialHex,
    topIssuer: svid.topIssuer,
  };
}

/** The cache record of a persisted SVID for `entry` (its hint, today's); anchored later by reanchor(). */
export function fromPersistedSvid(entry: AgentEntry, svid: PersistedSvid): CachedSvid {
  const chain = Object.freeze([...svid.chain]);
  return {
    entryId: svid.entryId,
    fieldsKey: svid.fieldsKey,
    spiffeId: svid.spiffeId,
    chain,
    key: svid.key,
    notBeforeMs: svid.notBeforeMs,
    expiresAtMs: svid.expiresAtMs,
    renewAtMs: svid.renewAtMs,
    serialHex: svid.serialHex,
    topIssuer: svid.topIssuer,
    anchor: undefined,
    view: Object.freeze({
      spiffeId: svid.spiffeId,
      chain,
      key: svid.key,
      hint: entry.hint,
      expiresAtMs: svid.expiresAtMs,
    }),
  };
}
