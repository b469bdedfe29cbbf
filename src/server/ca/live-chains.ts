// What still chains to an X.509 authority: the server's own SVID and the current SVIDs of attested
// agents. Revoking an authority while either does would lock agents out (they could no longer
// verify the server, or the server would refuse their SVID), so the CA asks this first. The agent
// API records on each node which authority signed its current SVID (x509AuthorityId).
import type { AuthorityDependents } from '../api/admin/deps.js';
import type { NodeStore, Page } from '../datastore/types.js';
import type { IssuedX509Svid } from './svid-signer.js';

/** Nodes are read in pages this big when counting. */
const NODE_PAGE_SIZE = 500;

/** Remembers what the server's own SVID chains to, and counts dependents. */
export class ChainTracker {
  private serverSvid: { readonly authorityId: string; readonly expiresAtMs: number } | undefined;

  constructor(private readonly store: Pick<NodeStore, 'listNodes'>) {}

  noteServerSvid(issued: IssuedX509Svid): void {
    this.serverSvid = { authorityId: issued.authorityId, expiresAtMs: issued.expiresAtMs };
  }

  /** A snapshot of live agents at `nowMs`: ask it, for any authority, what chains to it. */
  async dependents(nowMs: number): Promise<(authorityId: string) => AuthorityDependents> {
    const live = await countLiveAgents(this.store, nowMs);
    const server = this.serverSvid;
    return (authorityId) => ({
      agents: live.byAuthority.get(authorityId) ?? 0,
      unknownAgents: live.unknown,
      serverSvid: server?.authorityId === authorityId && server.expiresAtMs > nowMs,
    });
  }
}

/** Counts, for each authority ID, the live agents whose current SVID it signed. */
export async function countLiveAgents(
  store: Pick<NodeStore, 'listNodes'>,
  nowMs: number,
): Promise<{ byAuthority: ReadonlyMap<string, number>; unknown: number }> {
  const byAuthority = new Map<string, number>();
  let unknown = 0;
  let page: Page = { pageSize: NODE_PAGE_SIZE };
  for (;;) {
    const result = await store.listNodes(page);
    for (const node of result.items) {
      if (node.banned || node.certSerial === '' || node.certNotAfterMs <= nowMs) continue;
      if (node.x509AuthorityId === undefined) unknown += 1;
      else byAuthority.set(node.x509AuthorityId, (byAuthority.get(node.x509AuthorityId) ?? 0) + 1);
    }
    if (result.nextPageToken === undefined) return { byAuthority, unknown };
    page = { pageSize: NODE_PAGE_SIZE, pageToken: result.nextPageToken };
  }
}
