// Follows the server's SyncEntries stream: a snapshot (in pages) or a delta first, then pushed deltas.
// Reconnects with exponential backoff and jitter when the server is away, resumes from the last
// revision applied, and asks for a full snapshot now and then as a safety net.
import { type ServiceError, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { SyncEntriesResponse, WireEntry } from '../../../proto/agent-api.js';
import { Backoff, sleep } from '../../spiffe/backoff.js';
import { parseSpiffeBundle, type TrustBundle } from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import { parseTrustDomain, type TrustDomain } from '../../spiffe/id.js';
import { canonicalSelectors, makeSelector } from '../../spiffe/selector.js';
import type { AgentEntry, SyncUpdate } from '../manager/types.js';
import type { ServerConnection } from './connection.js';

/** Reconnects start at 500 ms and double up to 30 s: a returning server is used within half a minute. */
const RECONNECT_BACKOFF = Backoff.create({ initialMs: 500, maxMs: 30_000 });

export interface SyncLoopOptions {
  readonly connection: ServerConnection;
  readonly manager: { applySync(update: SyncUpdate): void };
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly trustDomain: TrustDomain;
  readonly reconcileIntervalMs: number;
  readonly signal: AbortSignal;
  onConnected(connected: boolean): void;
  onBundle(bundle: TrustBundle): void;
  /** The server refused us (evicted/banned). Resolve true once re-attested, false to keep waiting. */
  onEvicted(): Promise<boolean>;
}

export async function runSyncLoop(options: SyncLoopOptions): Promise<void> {
  const { clock, logger, signal } = options;
  let revision = 0;
  let lastSnapshotMs = clock.nowMs();
  let failures = 0;
  while (!signal.aborted) {
    const full = revision === 0 || clock.nowMs() - lastSnapshotMs >= options.reconcileIntervalMs;
    try {
      const outcome = await followStream(options, full ? 0 : revision, (applied, wasSnapshot) => {
        revision = applied;
        if (wasSnapshot) lastSnapshotMs = clock.nowMs();
        if (failures > 0) logger.info({ revision }, 'Connected to the server again');
        failures = 0;
        options.onConnected(true);
      });
      if (outcome === 'reconcile') logger.debug('Periodic full re-sync');
    } catch (err) {
      options.onConnected(false);
      if (signal.aborted) return;
      const code = (err as ServiceError).code;
      if (code === status.PERMISSION_DENIED || code === status.UNAUTHENTICATED) {
        logger.warn({ reason: (err as ServiceError).details }, 'Server refused the agent');
        revision = 0;
        if (await options.onEvicted().catch(() => false)) continue;
      } else if (code === status.CANCELLED) {
        // We closed the channel ourselves (SVID renewed): reconnect at once.
        continue;
      }
      const delayMs = RECONNECT_BACKOFF.afterFailures(failures).delayMs(options.random);
      failures++;
      logger.warn(
        {
          err: (err as ServiceError).details ?? (err as Error).message,
          retryInMs: Math.round(delayMs),
          server: options.connection.address,
        },
        'Server sync failed; serving cached SVIDs and retrying',
      );
      await sleep(clock, delayMs, signal);
    }
  }
}

/** One stream's life: resolves 'reconcile' when it is time for a full re-sync, rejects on stream errors. */
function followStream(
  options: SyncLoopOptions,
  sinceRevision: number,
  onApplied: (revision: number, snapshot: boolean) => void,
): Promise<'ended' | 'reconcile'> {
  const { connection, manager, trustDomain, clock, signal } = options;
  return new Promise((resolve, reject) => {
    const stream = connection.syncEntries({ sinceRevision });
    let snapshot: AgentEntry[] | null = null;
    let snapshotMeta: Partial<SyncUpdate> = {};
    const cancelReconcile = clock.setTimer(options.reconcileIntervalMs, () => {
      settle();
      stream.cancel();
      resolve('reconcile');
    });
    const onAbort = () => stream.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => {
      cancelReconcile();
      signal.removeEventListener('abort', onAbort);
      stream.removeAllListeners('data');
    };
    stream.on('data', (message: SyncEntriesResponse) => {
      const meta = decodeMeta(message, trustDomain);
      if (meta.bundle) options.onBundle(meta.bundle);
      if (message.snapshotBegin) {
        snapshot = [];
        snapshotMeta = meta;
      }
      if (snapshot) {
        snapshot.push(...message.upserted.map(decodeEntry));
        if (message.snapshotEnd) {
          manager.applySync({
            snapshot: true,
            upserted: snapshot,
            deletedIds: [],
            revision: message.revision,
            ...snapshotMeta,
          });
          snapshot = null;
          onApplied(message.revision, true);
        }
        return;
      }
      manager.applySync({
        snapshot: false,
        upserted: message.upserted.map(decodeEntry),
        deletedIds: message.deletedIds,
        revision: message.revision,
        ...meta,
      });
      onApplied(message.revision, false);
    });
    stream.on('error', (err) => {
      settle();
      reject(err);
    });
    stream.on('end', () => {
      settle();
      resolve('ended');
    });
  });
}

function decodeMeta(message: SyncEntriesResponse, trustDomain: TrustDomain): Partial<SyncUpdate> {
  const meta: {
    bundle?: TrustBundle;
    federatedBundles?: Map<string, TrustBundle>;
    taintedAuthorities?: Set<string>;
  } = {};
  if (message.bundle && message.bundle.length > 0) {
    meta.bundle = parseSpiffeBundle(Buffer.from(message.bundle).toString('utf8'), trustDomain);
    meta.taintedAuthorities = new Set(message.taintedAuthorities ?? []);
  }
  if (message.federatedBundlesSet) {
    meta.federatedBundles = new Map(
      Object.entries(message.federatedBundles).map(([name, json]) => [
        name,
        parseSpiffeBundle(Buffer.from(json).toString('utf8'), parseTrustDomain(name)),
      ]),
    );
  }
  return meta;
}

function decodeEntry(wire: WireEntry): AgentEntry {
  return {
    id: wire.id,
    spiffeId: wire.spiffeId,
    parentId: wire.parentId,
    selectors: canonicalSelectors(wire.selectors.map((s) => makeSelector(s.type, s.value))),
    x509SvidTtlMs: wire.x509SvidTtl * 1000,
    jwtSvidTtlMs: wire.jwtSvidTtl * 1000,
    dnsNames: wire.dnsNames,
    federatesWith: wire.federatesWith,
    admin: wire.admin,
    downstream: wire.downstream,
    hint: wire.hint,
    expiresAtMs: wire.expiresAt === 0 ? null : wire.expiresAt * 1000,
    revision: wire.revision,
  };
}
