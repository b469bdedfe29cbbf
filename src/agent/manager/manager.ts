// The agent's identity cache: it keeps an X509-SVID for each entry the server's sync stream grants
// (minted by CSR, the key never leaving the node), renews them on the injected Clock, and feeds the
// Workload API (IdentityFeed), never handing out an expired one. Decisions live in renewal.ts and
// mint-plan.ts; entry-cache.ts, svid-cache.ts, svid-trust.ts, watch-hub.ts and jwt-cache.ts hold
// state; manager-options.ts checks the options. It does not talk to the server itself: SvidSigner
// does. Nor does it touch the disk: it exports and restores its cache (cache-snapshot.ts) and says
// when that changed (onCacheChanged); svid-store.ts keeps it between runs.
import type { Logger } from 'pino';
import { Scheduler } from '../../rotation/index.js';
import type { TrustBundle } from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import { quote, SigilError } from '../../spiffe/errors.js';
import { checkJwtAudience } from '../../spiffe/jwt-svid.js';
import type { Selector } from '../../spiffe/selector.js';
import type { IdentityFeed, WorkloadIdentity, WorkloadJwtSvid } from '../workloadapi/identity-feed.js';
import { BundleState } from './bundle-state.js';
import { type CacheParts, restoreCache, snapshotCache } from './cache-snapshot.js';
import { EntryCache, type NearMatch } from './entry-cache.js';
import { JwtSvidCache } from './jwt-cache.js';
import { type AgentManagerOptions, resolveManagerOptions } from './manager-options.js';
import { planMints } from './mint-plan.js';
import { mintSvids, toCachedSvid } from './minter.js';
import type { PersistedCache } from './persisted-cache.js';
import { renewAtMs, retryDelayMs, svidFieldsKey } from './renewal.js';
import { SvidCache } from './svid-cache.js';
import { SvidTrust } from './svid-trust.js';
import type { AgentEntry, SvidSigner, SyncUpdate } from './types.js';
import { WatchHub } from './watch-hub.js';
import { buildGroupState } from './workload-identity.js';

/** Re-plan at least hourly: Node fires timers longer than ~24.8 days at once, and hourly scans are cheap. */
const MAX_SLEEP_MS = 60 * 60 * 1000;
/** Expired SVIDs are counted in full but named only this far: one line, whatever the outage. */
const MAX_LOGGED_IDS = 20;

export interface SvidStatus {
  readonly minted: boolean;
  readonly expiresAtMs?: number;
  readonly serialHex?: string;
}

interface Failure {
  readonly attempts: number;
  readonly retryAtMs: number;
}

export class AgentManager implements IdentityFeed {
  private readonly signer: SvidSigner;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly maxSvids: number;
  private readonly renewAtFraction: number;
  private readonly signBatchSize: number;
  private readonly entryCache = new EntryCache();
  private readonly svids = new SvidCache();
  private readonly jwts: JwtSvidCache;
  private readonly bundleState: BundleState;
  private readonly hub: WatchHub;
  /** Entries whose last mint failed, and when to try again. */
  private readonly failures = new Map<string, Failure>();
  private readonly trust = new SvidTrust();
  private readonly onCacheChanged: () => void;
  private readonly onExpiredDropped: (count: number) => void;
  private kicked = false;
  private wake: (() => void) | undefined;
  private running = false;
  /** Drops SVIDs at their expiry (dropExpired) while run() runs: the mint loop may be waiting on the server. */
  private expiry: Scheduler | undefined;

  constructor(unresolved: AgentManagerOptions) {
    const options = resolveManagerOptions(unresolved);
    this.signer = options.signer;
    this.clock = options.clock;
    this.random = options.random;
    // The caller names the component (agent.ts: { component: 'manager' }); a second child binding
    // here would print the key twice on every line.
    this.log = options.logger;
    this.maxSvids = options.maxSvids;
    this.signBatchSize = options.signBatchSize;
    this.renewAtFraction = options.renewAtFraction;
    this.onCacheChanged = options.onCacheChanged;
    this.onExpiredDropped = options.onExpiredDropped;
    this.bundleState = new BundleState(options.trustDomain, options.initialBundle);
    this.jwts = new JwtSvidCache(this.clock, options.jwtSvidCache);
    this.hub = new WatchHub({
      compute: (selectors) =>
        buildGroupState(
          this.entryCache.matching(selectors),
          this.svids,
          this.failures,
          this.bundleState,
          this.clock.nowMs(),
        ),
      onPending: () => this.kick(),
      // Recently watched: move to the fresh end so they are the last to be evicted.
      onGroupClosed: (entryIds) => {
        for (const id of entryIds) this.svids.touch(id);
      },
    });
  }

  /** Revision of the last applied sync update. */
  get revision(): number {
    return this.entryCache.revision;
  }

  /** All entries, sorted by id. */
  entries(): AgentEntry[] {
    return this.entryCache.all();
  }

  /** Entries whose selectors are all among `selectors` (SPIRE's subset rule), sorted by id. */
  matching(selectors: readonly Selector[]): AgentEntry[] {
    return this.entryCache.matching(selectors);
  }

  /** Entries sharing at least one selector with `selectors` but lacking some: for `debug explain`. */
  nearMatches(selectors: readonly Selector[]): NearMatch[] {
    return this.entryCache.nearMatches(selectors);
  }

  /** Entries held; O(1), unlike entries(). */
  get entryCount(): number {
    return this.entryCache.size;
  }

  /** X.509-SVIDs held that have not expired; O(1) unless one expired since the last check. */
  unexpiredSvidCount(): number {
    return this.svids.countUnexpired(this.clock.nowMs());
  }

  svidStatus(entryId: string): SvidStatus {
    const svid = this.svids.get(entryId);
    if (svid === undefined) return { minted: false };
    return { minted: true, expiresAtMs: svid.expiresAtMs, serialHex: svid.serialHex };
  }

  bundles(): ReadonlyMap<string, TrustBundle> {
    return this.bundleState.bundles();
  }

  /**
   * The workload's identity now and on every change. svids are in entry id order, as SPIRE's agent
   * sorts identities, so the default identity (svids[0]) is stable across restarts and agents.
   */
  watch(selectors: readonly Selector[], signal: AbortSignal): AsyncIterable<WorkloadIdentity> {
    return this.hub.watch(selectors, signal);
  }

  /**
   * Throws ERR_INPUT_INVALID for an audience outside the shared limits (checked here too, before
   * anything is minted or cached, whoever the caller), ERR_PERMISSION_DENIED when no entry (or not
   * `spiffeId`) matches.
   */
  async fetchJwtSvids(
    selectors: readonly Selector[],
    audience: readonly string[],
    spiffeId?: string,
  ): Promise<WorkloadJwtSvid[]> {
    checkJwtAudience(audience);
    let matching = this.entryCache.matching(selectors);
    if (spiffeId !== undefined && spiffeId !== '') matching = matching.filter((e) => e.spiffeId === spiffeId);
    if (matching.length === 0) {
      const what = spiffeId
        ? `the workload is not entitled to ${quote(spiffeId)}`
        : 'no entry matches the workload';
      throw new SigilError('ERR_PERMISSION_DENIED', `no identity issued: ${what}`, { reason: 'no-identity' });
    }
    return Promise.all(
      matching.map(async (entry) => {
        const token = await this.jwts.get(entry.id, audience, () =>
          this.signer.mintJwtSvid(entry.id, audience),
        );
        return Object.freeze({ spiffeId: entry.spiffeId, token, hint: entry.hint });
      }),
    );
  }

  /** Applies one sync message. Throws ERR_BUNDLE_INVALID (and changes nothing) for a foreign own bundle. */
  applySync(update: SyncUpdate): void {
    const previousRevision = this.entryCache.revision;
    const bundleChanged = update.bundle !== undefined && this.bundleState.setOwn(update.bundle);
    const federatedChanged =
      update.federatedBundles !== undefined && this.bundleState.setFederated(update.federatedBundles);
    const changes = this.entryCache.apply(update);
    for (const id of changes.removed) {
      // Gone at once: watchers see the SVID disappear in their next message (redaction).
      this.svids.delete(id);
      this.failures.delete(id);
      this.trust.forget(id);
      this.jwts.dropEntry(id);
    }
    for (const id of changes.needSvid) {
      // A changed entry deserves a fresh attempt, and its tokens may name the old SPIFFE ID.
      this.failures.delete(id);
      this.jwts.dropEntry(id);
    }
    const taintChanged =
      update.taintedAuthorities !== undefined && this.trust.setTainted(update.taintedAuthorities);
    if (bundleChanged || taintChanged) {
      this.trust.recheck(this.bundleState.bundle, this.svids);
      this.log.info(
        {
          authorities: this.bundleState.bundle.x509Authorities.length,
          tainted: [...this.trust.tainted],
          svidsToReplace: this.trust.untrusted.size,
        },
        'Trust bundle updated',
      );
    }
    if (changes.any || bundleChanged || federatedChanged) this.hub.refresh();
    if (changes.needSvid.length > 0 || this.trust.untrusted.size > 0) this.kick();
    if (
      changes.any ||
      bundleChanged ||
      federatedChanged ||
      taintChanged ||
      update.revision !== previousRevision
    )
      this.onCacheChanged();
  }

  /** Entries, bundles and X.509-SVIDs with their keys, for svid-store.ts to keep between runs. */
  exportCache(agentId: string): PersistedCache {
    return snapshotCache(agentId, this.cacheParts(), this.trust.tainted);
  }

  /**
   * Takes over a cache an earlier run kept (decoded and checked by persisted-cache.ts), before run()
   * and before the first sync: workloads are served from it until the server's first snapshot
   * replaces it. The own bundle is taken only when newer (by sequence) than the one we started with.
   * SVIDs no longer chaining to the bundle are served until replaced, as after a rotation.
   */
  restoreCache(cache: PersistedCache): void {
    this.trust.setTainted(restoreCache(this.cacheParts(), cache));
    this.trust.recheck(this.bundleState.bundle, this.svids);
    this.hub.refresh();
    this.kick();
    this.scheduleExpiry();
  }

  private cacheParts(): CacheParts {
    return { entryCache: this.entryCache, svids: this.svids, bundleState: this.bundleState };
  }

  /** Keeps SVIDs minted and fresh until `signal` aborts. Watchers get SVIDs only while this runs. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running) {
      throw new SigilError('ERR_INPUT_INVALID', 'agent manager: run() is already running', {
        reason: 'running',
      });
    }
    this.running = true;
    const expiry = new Scheduler(this.clock, {
      onError: (err) => this.log.error({ err }, 'Dropping expired SVIDs failed'),
    });
    this.expiry = expiry;
    this.dropExpired();
    try {
      while (!signal.aborted) {
        this.kicked = false;
        const nowMs = this.clock.nowMs();
        const { due, nextAtMs } = planMints({
          nowMs,
          entries: this.entryCache.values(),
          svids: this.svids,
          watched: this.hub.watchedEntryIds(),
          failures: this.failures,
          untrusted: this.trust.untrusted,
          maxSvids: this.maxSvids,
        });
        if (due.length > 0) {
          await this.mintBatch(due.slice(0, this.signBatchSize));
          continue;
        }
        await this.sleep(Math.min(nextAtMs - nowMs, MAX_SLEEP_MS), signal);
      }
    } finally {
      this.running = false;
      this.expiry = undefined;
      await expiry.close();
    }
  }

  /**
   * Removes expired SVIDs, so that their watchers get an update without them (with none left, the
   * Workload API ends the stream with PERMISSION_DENIED, as SPIRE does when nothing matches) and the
   * SVID store forgets them; then wakes again at the next expiry.
   */
  private dropExpired(): void {
    const expired = this.svids.dropExpired(this.clock.nowMs());
    if (expired.length > 0) {
      for (const id of expired) this.trust.forget(id);
      this.onExpiredDropped(expired.length);
      this.log.warn(
        { expired: expired.length, entryIds: expired.slice(0, MAX_LOGGED_IDS) },
        'X.509-SVIDs expired before they were renewed; no longer served',
      );
      this.hub.refresh();
      this.kick();
      this.onCacheChanged();
    }
    this.scheduleExpiry();
  }

  private scheduleExpiry(): void {
    const atMs = this.svids.nextExpiryMs;
    if (Number.isFinite(atMs)) this.expiry?.schedule('expiry', atMs, () => this.dropExpired());
  }

  private async mintBatch(batch: readonly AgentEntry[]): Promise<void> {
    let outcomes: Awaited<ReturnType<typeof mintSvids>>;
    try {
      outcomes = await mintSvids(this.signer, batch, this.bundleState.bundle.x509Authorities);
    } catch (err) {
      // One delay for the whole batch: per-entry jitter would split the retry into many small calls.
      const attempts = 1 + Math.max(...batch.map((e) => this.failures.get(e.id)?.attempts ?? 0));
      const delayMs = retryDelayMs(attempts, this.random);
      const retryAtMs = this.clock.nowMs() + delayMs;
      for (const entry of batch) this.failures.set(entry.id, { attempts, retryAtMs });
      this.log.warn(
        { err, entries: batch.length, attempt: attempts, retryInMs: delayMs },
        'SVID signing failed; serving cached SVIDs and retrying',
      );
      this.hub.refresh();
      return;
    }
    for (const outcome of outcomes) {
      const entry = this.entryCache.get(outcome.entry.id);
      // Deleted or changed while the call was out: the next plan mints for what the entry is now.
      if (entry === undefined || svidFieldsKey(entry) !== svidFieldsKey(outcome.entry)) continue;
      if (!outcome.ok) {
        const attempts = (this.failures.get(entry.id)?.attempts ?? 0) + 1;
        const delayMs = retryDelayMs(attempts, this.random);
        this.failures.set(entry.id, { attempts, retryAtMs: this.clock.nowMs() + delayMs });
        this.log.warn(
          {
            entryId: entry.id,
            spiffeId: entry.spiffeId,
            reason: outcome.reason,
            attempt: attempts,
            retryInMs: delayMs,
          },
          'SVID not usable; retrying later',
        );
        continue;
      }
      const renewed = this.svids.get(entry.id) !== undefined;
      this.failures.delete(entry.id);
      this.trust.forget(entry.id);
      // Lifetime counts from receipt, not notBefore: the server backdates certificates for clock
      // skew, and for short TTLs the backdated half-life would already be past (renewal loop).
      const receivedAtMs = this.clock.nowMs();
      this.svids.set(
        toCachedSvid(entry, outcome.svid, (svid) =>
          renewAtMs(
            Math.max(svid.notBeforeMs, receivedAtMs),
            svid.expiresAtMs,
            this.renewAtFraction,
            this.random,
          ),
        ),
      );
      this.log.debug(
        {
          entryId: entry.id,
          spiffeId: entry.spiffeId,
          serial: outcome.svid.serialHex,
          expiresAtMs: outcome.svid.expiresAtMs,
        },
        renewed ? 'SVID renewed' : 'SVID minted',
      );
    }
    const watched = this.hub.watchedEntryIds();
    const evicted = this.svids.evict(this.maxSvids, (id) => watched.has(id));
    if (evicted.length > 0)
      this.log.debug({ evicted: evicted.length, maxSvids: this.maxSvids }, 'SVIDs evicted');
    this.hub.refresh();
    this.scheduleExpiry();
    if (outcomes.some((o) => o.ok) || evicted.length > 0) this.onCacheChanged();
  }

  private kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  private sleep(delayMs: number, signal: AbortSignal): Promise<void> {
    if (this.kicked || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let cancelTimer = () => {};
      const done = () => {
        cancelTimer();
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      if (Number.isFinite(delayMs)) cancelTimer = this.clock.setTimer(delayMs, done);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }
}
