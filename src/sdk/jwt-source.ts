// JwtSource keeps the JWT bundles of every trust domain the workload trusts, from a Workload API
// watch, and fetches JWT-SVIDs on demand (go-spiffe's JWTSource). JWT-SVIDs are not cached here:
// the agent already caches them per audience, and a stale token is worse than a round trip.
import { EventEmitter } from 'node:events';
import type { TrustBundle } from '../spiffe/bundle.js';
import { quote, SigilError } from '../spiffe/errors.js';
import type { TrustDomain } from '../spiffe/id.js';
import { type JwtSvid, WorkloadApiClient, type WorkloadApiClientOptions } from './client.js';
import { untilFirstUpdate } from './first-update.js';

export interface JwtSourceOptions extends WorkloadApiClientOptions {
  /** Use this client instead of making one; the source then does not close it. */
  client?: WorkloadApiClient;
  /** Abandons `create` (it rejects) and closes the source. */
  signal?: AbortSignal;
  /** Watch failures after the first update, for logging; the source keeps its last good bundles. */
  onError?: (err: SigilError) => void;
}

export interface JwtSourceEvents {
  update: [ReadonlyMap<string, TrustBundle>];
}

export class JwtSource extends EventEmitter<JwtSourceEvents> {
  private bundles: ReadonlyMap<string, TrustBundle> | undefined;
  private readonly controller = new AbortController();
  private closed = false;

  private constructor(
    private readonly client: WorkloadApiClient,
    private readonly ownsClient: boolean,
  ) {
    super();
  }

  /** Connects and resolves once the first set of JWT bundles has arrived. */
  static create(options: JwtSourceOptions = {}): Promise<JwtSource> {
    const source = new JwtSource(
      options.client ?? new WorkloadApiClient(options),
      options.client === undefined,
    );
    return untilFirstUpdate<ReadonlyMap<string, TrustBundle>>(
      'jwtsource',
      options,
      () => source.close(),
      (onUpdate) =>
        source.client.watchJwtBundles(onUpdate, source.controller.signal, { onError: options.onError }),
      (bundles) => {
        source.bundles = bundles;
        source.emit('update', bundles);
      },
    ).then(() => source);
  }

  /** A JWT-SVID for `audience`, the default identity's or the one for `spiffeId`. */
  fetchJwtSvid(
    audience: string | readonly string[],
    spiffeId?: string,
    signal?: AbortSignal,
  ): Promise<JwtSvid> {
    this.current();
    return this.client.fetchJwtSvid(audience, spiffeId, signal);
  }

  /** The JWT bundle of `trustDomain`; ERR_BUNDLE_NOT_FOUND when the workload has none for it. */
  getBundleFor(trustDomain: TrustDomain | string): TrustBundle {
    const name = typeof trustDomain === 'string' ? trustDomain : trustDomain.name;
    const bundle = this.current().get(name);
    if (!bundle) {
      throw new SigilError('ERR_BUNDLE_NOT_FOUND', `jwtsource: no bundle for trust domain ${quote(name)}`, {
        field: 'trust_domain',
      });
    }
    return bundle;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.controller.abort();
    if (this.ownsClient) this.client.close();
  }

  private current(): ReadonlyMap<string, TrustBundle> {
    if (this.closed) throw new SigilError('ERR_UNAVAILABLE', 'jwtsource: the source is closed');
    return this.bundles!;
  }
}
