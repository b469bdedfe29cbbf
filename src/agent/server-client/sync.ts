// Follows the server's SyncEntries stream: a snapshot (in pages) or a delta first, then pushed deltas.
// Reconnects with exponential backoff and jitter when the server is away, resumes from the last
// revision applied, and asks for a full snapshot now and then as a safety net. Every way a stream can
// stop (an error, a message we cannot decode or apply, a clean end, a cancel) comes back to this loop;
// only an end we caused ourselves (SVID renewed, failover) reconnects without a delay.
import { type ClientReadableStream, type ServiceError, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { SyncEntriesRequest, SyncEntriesResponse, WireEntry } from '../../../proto/agent-api.js';
import { Backoff, sleep } from '../../spiffe/backoff.js';
import { parseSpiffeBundle, type TrustBundle } from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { parseTrustDomain, type TrustDomain } from '../../spiffe/id.js';
import { canonicalSelectors, makeSelector } from '../../spiffe/selector.js';
import type { AgentEntry, SyncUpdate } from '../manager/types.js';

/** Reconnects start at 500 ms and double up to 30 s: a returning server is used within half a minute. */
const RECONNECT_BACKOFF = Backoff.create({ initialMs: 500, maxMs: 30_000 });
/**
 * A stream that lived this long before it stopped resets the backoff. Shorter-lived ones keep
 * counting as failures even if they delivered a snapshot, so a server that answers and hangs up at
 * once is retried ever more slowly instead of every half second.
 */
const STABLE_STREAM_MS = 30_000;

/** What the loop needs of the server connection. */
export interface SyncConnection {
  readonly address: string;
  /** Changes whenever we close the channel on purpose (see ServerConnection.generation). */
  readonly generation: number;
  syncEntries(request: SyncEntriesRequest): ClientReadableStream<SyncEntriesResponse>;
}

export interface SyncLoopOptions {
  readonly connection: SyncConnection;
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
  /** Every failed or server-ended stream, before the loop backs off (for health and advice). */
  onFailure?(err: unknown): void;
  /**
   * Whether a failure means the server refuses us (then onEvicted). Defaults to PERMISSION_DENIED and
   * UNAUTHENTICATED; the agent adds a TLS alert refusing our certificate.
   */
  isRefusal?(err: unknown): boolean;
}

export async function runSyncLoop(options: SyncLoopOptions): Promise<void> {
  const { clock, logger, signal, connection } = options;
  let revision = 0;
  let lastSnapshotMs = clock.nowMs();
  let failures = 0;
  let wasDown = false;
  while (!signal.aborted) {
    const full = revision === 0 || clock.nowMs() - lastSnapshotMs >= options.reconcileIntervalMs;
    const generation = connection.generation;
    const openedAtMs = clock.nowMs();
    let failure: unknown;
    let ended = false;
    try {
      const outcome = await followStream(options, full ? 0 : revision, (applied, wasSnapshot) => {
        revision = applied;
        if (wasSnapshot) lastSnapshotMs = clock.nowMs();
        if (wasDown) logger.info({ revision }, 'Connected to the server again');
        wasDown = false;
        options.onConnected(true);
      });
      if (outcome === 'reconcile') {
        logger.debug('Periodic full re-sync');
        continue;
      }
      ended = true;
      failure = new SigilError('ERR_UNAVAILABLE', `server ${connection.address} ended the sync stream`);
    } catch (err) {
      failure = err;
    }
    options.onConnected(false);
    if (signal.aborted) return;
    const code = (failure as ServiceError).code;
    const ourDoing = connection.generation !== generation;
    if ((code === status.CANCELLED || ended) && ourDoing) {
      // We closed the channel ourselves (SVID renewed, failover): reconnect at once.
      continue;
    }
    if (clock.nowMs() - openedAtMs >= STABLE_STREAM_MS) failures = 0;
    options.onFailure?.(failure);
    const refused = options.isRefusal
      ? options.isRefusal(failure)
      : code === status.PERMISSION_DENIED || code === status.UNAUTHENTICATED;
    if (refused) {
      logger.warn({ reason: (failure as ServiceError).details }, 'Server refused the agent');
      revision = 0;
      const reattested = await options.onEvicted().catch((err: unknown) => {
        // onEvicted logs its own failures; one that escapes is logged here, then backed off like any.
        logger.error({ err }, 'Handling the refusal failed');
        return false;
      });
      if (reattested) continue;
    }
    const delayMs = RECONNECT_BACKOFF.afterFailures(failures).delayMs(options.random);
    failures++;
    wasDown = true;
    logger.warn(
      {
        err: (failure as ServiceError).details ?? (failure as Error).message,
        retryInMs: Math.round(delayMs),
        server: connection.address,
      },
      'Server sync failed; serving cached SVIDs and retrying',
    );
    await sleep(clock, delayMs, signal);
  }
}

/**
 * One stream's life: resolves 'reconcile' when it is time for a full re-sync and 'ended' when the
 * server ends it; rejects on stream errors and on a message that cannot be decoded or applied.
 */
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
    const handle = (message: SyncEntriesResponse) => {
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
    };
    stream.on('data', (message: SyncEntriesResponse) => {
      // A throw here would surface inside grpc-js, far from the backoff: end this stream and let the
      // loop reconnect (with a delay), resuming from the last revision applied.
      try {
        handle(message);
      } catch (err) {
        settle();
        stream.cancel();
        reject(err);
      }
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
