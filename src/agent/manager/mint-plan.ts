// Which entries to mint now and when to look again: a pure decision over the manager's state
// (STYLE §9), so the priorities can be read in one place and tested without a signer.
import { svidFieldsKey } from './renewal.js';
import type { SvidCache } from './svid-cache.js';
import type { AgentEntry } from './types.js';

export interface MintPlanInput {
  readonly nowMs: number;
  readonly entries: Iterable<AgentEntry>;
  readonly svids: Pick<SvidCache, 'get' | 'size'>;
  /** Entries some live workload matches. */
  readonly watched: ReadonlySet<string>;
  /** Entries whose last mint failed, with when to try again. */
  readonly failures: ReadonlyMap<string, { readonly retryAtMs: number }>;
  /** Entries whose SVID no longer chains to the bundle. */
  readonly untrusted: ReadonlySet<string>;
  readonly maxSvids: number;
}

export interface MintPlan {
  /** Most urgent first: watched entries without a usable SVID, new entries while the cache has room, renewals by due time. */
  readonly due: AgentEntry[];
  /** When the next entry not yet due becomes due (Infinity: nothing scheduled). */
  readonly nextAtMs: number;
}

export function planMints(input: MintPlanInput): MintPlan {
  const { nowMs, svids, watched } = input;
  const urgent: AgentEntry[] = [];
  const fresh: AgentEntry[] = [];
  const renew: { entry: AgentEntry; atMs: number }[] = [];
  let room = input.maxSvids - svids.size;
  let nextAtMs = Number.POSITIVE_INFINITY;
  for (const entry of input.entries) {
    const svid = svids.get(entry.id);
    const isWatched = watched.has(entry.id);
    let dueAtMs = nowMs;
    let bucket: 'urgent' | 'fresh' | 'renew' = isWatched ? 'urgent' : 'renew';
    if (svid === undefined) {
      // Unwatched entries beyond the bound wait until a workload asks: minting them would only evict others.
      if (!isWatched && room <= 0) continue;
      if (!isWatched) {
        room--;
        bucket = 'fresh';
      }
    } else if (svid.fieldsKey === svidFieldsKey(entry) && !input.untrusted.has(entry.id)) {
      dueAtMs = svid.renewAtMs;
      bucket = 'renew';
    }
    const atMs = Math.max(dueAtMs, input.failures.get(entry.id)?.retryAtMs ?? dueAtMs);
    if (atMs > nowMs) nextAtMs = Math.min(nextAtMs, atMs);
    else if (bucket === 'urgent') urgent.push(entry);
    else if (bucket === 'fresh') fresh.push(entry);
    else renew.push({ entry, atMs });
  }
  renew.sort((a, b) => a.atMs - b.atMs);
  return { due: [...urgent, ...fresh, ...renew.map((r) => r.entry)], nextAtMs };
}
