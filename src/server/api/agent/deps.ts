// What the agent API needs from the rest of the server.
import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { NodeAttestorServer } from '../../../attestors/node/types.js';
import type { Clock } from '../../../spiffe/clock.js';
import type { SpiffeId } from '../../../spiffe/id.js';
import type { ParsedCsr } from '../../../spiffe/x509-svid.js';
import type { AuthorizedEntries } from '../../authorized-entries/index.js';
import type { IssuedX509Svid } from '../../ca/svid-signer.js';
import type { DataStore } from '../../datastore/types.js';
import type { ServerMetrics } from '../../metrics.js';
import type { AdminCa } from '../admin/deps.js';
import type { BundleFeed } from './bundle-feed.js';

/** The workload surface agents sign through, plus agents' own SVIDs (attestation and renewal). */
export interface AgentApiCa extends Pick<AdminCa, 'trustDomain' | 'bundle' | 'signCsr' | 'mintJwtSvid'> {
  signAgentSvid(params: { csr: ParsedCsr; agentId: SpiffeId; ttlMs: number }): IssuedX509Svid;
  /** Every X.509 authority in the journal: what an agent's SVID must have been signed by. */
  x509AuthorityCertificates(): readonly X509Certificate[];
}

export interface AgentApiDeps {
  readonly ca: AgentApiCa;
  /** The store as observed by the index: writes through it update `index`. */
  readonly store: DataStore;
  readonly index: AuthorizedEntries;
  readonly bundles: BundleFeed;
  readonly attestors: ReadonlyMap<string, NodeAttestorServer>;
  readonly agentSvidTtlMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  /** Fires when an agent is evicted or banned, so its open streams end at once. */
  onAgentRemoved(listener: (agentId: string) => void): () => void;
}
