// The own trust bundle and the federated ones, as the sync stream last sent them. An update whose
// content equals what is held keeps the held object, so watchers compare bundles by reference and a
// re-sent but unchanged bundle never produces a duplicate Workload API message.
import type { TrustBundle } from '../../spiffe/bundle.js';
import { SigilError } from '../../spiffe/errors.js';
import type { TrustDomain } from '../../spiffe/id.js';

const ID_PREFIX = 'spiffe://';

export class BundleState {
  private own: TrustBundle;
  private federated: ReadonlyMap<string, TrustBundle> = new Map();
  private all: ReadonlyMap<string, TrustBundle> | undefined;

  constructor(
    private readonly trustDomain: TrustDomain,
    initial: TrustBundle,
  ) {
    this.own = this.checkOwn(initial);
  }

  get bundle(): TrustBundle {
    return this.own;
  }

  /** Returns true when the own bundle's content changed. */
  setOwn(bundle: TrustBundle): boolean {
    this.checkOwn(bundle);
    if (sameBundle(this.own, bundle)) return false;
    this.own = bundle;
    this.all = undefined;
    return true;
  }

  /** Replaces the federated set (it is always sent complete); returns true when anything changed. */
  setFederated(bundles: ReadonlyMap<string, TrustBundle>): boolean {
    const next = new Map<string, TrustBundle>();
    let changed = bundles.size !== this.federated.size;
    for (const [rawName, bundle] of bundles) {
      const name = trustDomainName(rawName);
      const held = this.federated.get(name);
      const kept = held !== undefined && sameBundle(held, bundle) ? held : bundle;
      if (kept !== held) changed = true;
      next.set(name, kept);
    }
    if (!changed) return false;
    this.federated = next;
    this.all = undefined;
    return true;
  }

  /** The federated bundles by trust domain name, as last set. */
  federatedBundles(): ReadonlyMap<string, TrustBundle> {
    return this.federated;
  }

  /** Own + federated by trust domain name; the same frozen map until something changes. */
  bundles(): ReadonlyMap<string, TrustBundle> {
    if (this.all === undefined) {
      this.all = frozenMap([[this.own.trustDomain.name, this.own], ...this.federated]);
    }
    return this.all;
  }

  /** The federated bundles named (by trust domain name or ID) that the agent has, sorted by name. */
  federatedFor(names: Iterable<string>): ReadonlyMap<string, TrustBundle> {
    const found: [string, TrustBundle][] = [];
    for (const name of new Set([...names].map(trustDomainName))) {
      const bundle = this.federated.get(name);
      if (bundle !== undefined) found.push([name, bundle]);
    }
    return frozenMap(found.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  private checkOwn(bundle: TrustBundle): TrustBundle {
    if (!bundle.trustDomain.equals(this.trustDomain)) {
      throw new SigilError(
        'ERR_BUNDLE_INVALID',
        `agent manager: bundle for "${bundle.trustDomain.name}" is not the own trust domain "${this.trustDomain.name}"`,
        { field: 'bundle', reason: 'trust-domain' },
      );
    }
    return bundle;
  }
}

/** Same authorities and metadata. JWT keys compare by kid and SPKI, certificates byte for byte. */
export function sameBundle(a: TrustBundle, b: TrustBundle): boolean {
  if (a === b) return true;
  if (
    !a.trustDomain.equals(b.trustDomain) ||
    a.sequence !== b.sequence ||
    a.refreshHintS !== b.refreshHintS
  ) {
    return false;
  }
  if (
    a.x509Authorities.length !== b.x509Authorities.length ||
    a.jwtAuthorities.length !== b.jwtAuthorities.length
  ) {
    return false;
  }
  if (!a.x509Authorities.every((der, i) => der.equals(b.x509Authorities[i]!))) return false;
  return a.jwtAuthorities.every((key, i) => {
    const other = b.jwtAuthorities[i]!;
    return (
      key.kid === other.kid && key.expiresAtMs === other.expiresAtMs && key.publicKey.equals(other.publicKey)
    );
  });
}

/** Entries' federatesWith may hold "spiffe://td" or "td"; bundles are keyed by the bare name. */
function trustDomainName(name: string): string {
  return name.startsWith(ID_PREFIX) ? name.slice(ID_PREFIX.length) : name;
}

/** A Map that refuses writes: Object.freeze alone does not stop Map#set, and these maps are shared. */
export function frozenMap<K, V>(entries: Iterable<readonly [K, V]>): ReadonlyMap<K, V> {
  const map = new Map<K, V>(entries);
  const refuse = () => {
    throw new TypeError('this map is shared and read-only');
  };
  Object.defineProperties(map, {
    set: { value: refuse },
    delete: { value: refuse },
    clear: { value: refuse },
  });
  return Object.freeze(map);
}
