// X509Source keeps a workload's current X.509-SVIDs and bundles up to date from a Workload API
// watch, so TLS code can ask "what is my SVID now" without a round trip (go-spiffe's X509Source).
// It never hands out a half-applied update: each update replaces the whole context at once.
import { EventEmitter } from 'node:events';
import type { TrustBundle } from '../spiffe/bundle.js';
import { quote, SigilError } from '../spiffe/errors.js';
import type { TrustDomain } from '../spiffe/id.js';
import { WorkloadApiClient, type WorkloadApiClientOptions } from './client.js';
import { untilFirstUpdate } from './first-update.js';
import type { X509Context, X509Svid } from './x509-context.js';

export interface X509SourceOptions extends WorkloadApiClientOptions {
  /** Use this client instead of making one; the source then does not close it. */
  client?: WorkloadApiClient;
  /** Chooses the SVID `getSvid()` returns. Defaults to the first (the default identity). */
  pickSvid?: (svids: readonly X509Svid[]) => X509Svid;
  /** Abandons `create` (it rejects) and closes the source. */
  signal?: AbortSignal;
  /** Watch failures after the first update, for logging; the source keeps its last good state. */
  onError?: (err: SigilError) => void;
}

export interface X509SourceEvents {
  update: [X509Context];
}

export class X509Source extends EventEmitter<X509SourceEvents> {
  private context: X509Context | undefined;
  private readonly controller = new AbortController();
  private closed = false;

  private constructor(
    private readonly client: WorkloadApiClient,
    private readonly ownsClient: boolean,
    private readonly pickSvid: (svids: readonly X509Svid[]) => X509Svid,
  ) {
    super();
  }

  /** Connects and resolves once the first X.509 context has arrived. */
  static create(options: X509SourceOptions = {}): Promise<X509Source> {
    const source = new X509Source(
      options.client ?? new WorkloadApiClient(options),
      options.client === undefined,
      options.pickSvid ?? ((svids) => svids[0]!),
    );
    return untilFirstUpdate<X509Context>(
      'x509source',
      options,
      () => source.close(),
      (onUpdate) =>
        source.client.watchX509Svids(onUpdate, source.controller.signal, { onError: options.onError }),
      (context) => {
        source.context = context;
        source.emit('update', context);
      },
    ).then(() => source);
  }

  /** The current X.509 context (all SVIDs and bundles). */
  getContext(): X509Context {
    return this.current();
  }

  /** The SVID chosen by `pickSvid`, by default the workload's default identity. */
  getSvid(): X509Svid {
    return this.pickSvid(this.current().svids);
  }

  /** The X.509 bundle of `trustDomain`; ERR_BUNDLE_NOT_FOUND when the workload has none for it. */
  getBundleFor(trustDomain: TrustDomain | string): TrustBundle {
    const name = typeof trustDomain === 'string' ? trustDomain : trustDomain.name;
    const bundle = this.current().bundles.get(name);
    if (!bundle) {
      throw new SigilError('ERR_BUNDLE_NOT_FOUND', `x509source: no bundle for trust domain ${quote(name)}`, {
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

  private current(): X509Context {
    if (this.closed) throw new SigilError('ERR_UNAVAILABLE', 'x509source: the source is closed');
    return this.context!;
  }
}
