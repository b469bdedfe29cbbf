// Bundles as the agent API serves them: our own (from the CA) and the federated ones (from the
// store), with a change notification so open sync streams can push updates right away.
import { EventEmitter } from 'node:events';
import { parseSpiffeBundle, type TrustBundle } from '../../../spiffe/bundle.js';
import { parseTrustDomain } from '../../../spiffe/id.js';
import type { BundleStore } from '../../datastore/types.js';

export class BundleFeed {
  private readonly events = new EventEmitter();
  private federated = new Map<string, TrustBundle>();

  private constructor(
    private readonly store: BundleStore,
    private readonly own: () => TrustBundle,
    /** Tainted X.509 authorities of our own bundle (subject key IDs). */
    readonly taintedAuthorities: () => string[],
  ) {
    this.events.setMaxListeners(0);
  }

  static async load(
    store: BundleStore,
    own: () => TrustBundle,
    tainted: () => string[],
  ): Promise<BundleFeed> {
    const feed = new BundleFeed(store, own, tainted);
    await feed.reload();
    return feed;
  }

  ownBundle(): TrustBundle {
    return this.own();
  }

  /** Federated bundles for the given trust domain names (those we have). */
  federatedFor(names: Iterable<string>): Map<string, TrustBundle> {
    const out = new Map<string, TrustBundle>();
    for (const name of names) {
      const bundle = this.federated.get(name);
      if (bundle) out.set(name, bundle);
    }
    return out;
  }

  /** Re-reads the store after a bundle write and tells every listener. */
  async reload(): Promise<void> {
    const own = this.own().trustDomain.name;
    const next = new Map<string, TrustBundle>();
    for (const stored of await this.store.listBundles()) {
      if (stored.trustDomain === own) continue;
      next.set(
        stored.trustDomain,
        parseSpiffeBundle(stored.bundleJson, parseTrustDomain(stored.trustDomain)),
      );
    }
    this.federated = next;
    this.events.emit('change');
  }

  /** Own bundle changed (CA rotation). */
  ownChanged(): void {
    this.events.emit('change');
  }

  onChange(listener: () => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }
}
