// What still chains to an X.509 authority: the server's own SVID and the current SVIDs of attested
// agents. Revoking an authority while either does would lock agents out (they could no longer
// verify the server, or the server would refuse their SVID), so the CA asks this first.
// Agent SVIDs are signed by the CA but recorded on the node by the agent API, which knows nothing
// of authorities: AgentIssuers remembers which authority signed each fresh serial for the moment
// until that write, and recordAgentIssuers stamps it on the node record as it is stored.
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { AuthorityDependents } from '../api/admin/deps.js';
import type { AttestationStore, AttestedNode, NodeStore, Page } from '../datastore/types.js';
import type { IssuedX509Svid } from './svid-signer.js';

/** Serials signed but not yet stored; a failed write leaves one behind, so the map is capped. */
const MAX_PENDING_SERIALS = 10_000;
/** Nodes are read in pages this big when counting. */
const NODE_PAGE_SIZE = 500;

export class AgentIssuers {
  private readonly pending = new Map<string, string>();

  noteSigned(serialHex: string, authorityId: string): void {
    this.pending.set(serialHex, authorityId);
    if (this.pending.size > MAX_PENDING_SERIALS) {
      this.pending.delete(this.pending.keys().next().value!);
    }
  }

  /** The authority that signed `serialHex`, forgotten once asked (the node record keeps it). */
  take(serialHex: string): string | undefined {
    const id = this.pending.get(serialHex);
    this.pending.delete(serialHex);
    return id;
  }
}

/**
 * `store` with node writes stamped with the issuing authority of their SVID. A serial this process
 * did not just sign (none today) is stored without one, which counts as "unknown": never as "moved".
 */
export function recordAgentIssuers<S extends NodeStore & AttestationStore>(
  store: S,
  issuers: AgentIssuers,
): S {
  const stamp = (node: AttestedNode): AttestedNode => {
    const { x509AuthorityId: _previous, ...rest } = node;
    const issuer = issuers.take(node.certSerial);
    return issuer === undefined ? rest : { ...rest, x509AuthorityId: issuer };
  };
  return Object.assign(Object.create(store) as S, {
    upsertNode: (node: AttestedNode) => store.upsertNode(stamp(node)),
    commitAttestation: (commit: Parameters<AttestationStore['commitAttestation']>[0]) =>
      store.commitAttestation({ ...commit, node: stamp(commit.node) }),
  });
}

/** Remembers what the server's own SVID and fresh agent SVIDs chain to, and counts dependents. */
export class ChainTracker {
  readonly agentIssuers = new AgentIssuers();
  private serverSvid: { readonly authorityId: string; readonly expiresAtMs: number } | undefined;

  constructor(private readonly store: Pick<NodeStore, 'listNodes'>) {}

  noteServerSvid(issued: IssuedX509Svid): void {
    this.serverSvid = { authorityId: issued.authorityId, expiresAtMs: issued.expiresAtMs };
  }

  noteAgentSvid(issued: IssuedX509Svid): void {
    this.agentIssuers.noteSigned(describeCertificate(issued.chain[0]!).serialHex, issued.authorityId);
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
