// Agent metrics on a registry passed in (never prom-client's global one), named
// sigil_agent_<what>_<unit|total> with bounded labels: outcomes, RPC names, gRPC codes, reasons and
// component names, never SPIFFE IDs of workloads, pids or uids. The rest of the agent never sees
// prom-client: it calls the small hooks below, from agent.ts and the Workload API's observer.
import { Counter, collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../spiffe/clock.js';
import type { ServerFailureKind } from './identity/index.js';
import type { WorkloadApiObserver } from './workloadapi/observer.js';

export type AttestationOutcome = 'success' | ServerFailureKind;
export type SvidKind = 'x509' | 'jwt';

export interface AgentMetrics {
  /** One node attestation attempt (first, or again after a refusal) and how it ended. */
  attested(outcome: AttestationOutcome): void;
  /** The sync stream is (or is no longer) delivering updates. */
  syncConnected(connected: boolean): void;
  /** A sync message (snapshot or delta) was applied; `revision` is the entry revision it brought. */
  syncApplied(revision: number): void;
  /** A sync stream failed or was ended by the server; the loop reconnects after a backoff. */
  syncFailed(): void;
  minted(kind: SvidKind, count: number): void;
  mintFailed(kind: SvidKind, count: number): void;
  /** X.509-SVIDs dropped from the cache at their expiry, never renewed in time. */
  expiredDropped(count: number): void;
  /** An error-level log line of `component` (pino hook in cli/main.ts). */
  loggedError(component: string): void;
  /** Where the cached X.509-SVID count is read at each scrape. */
  sampleCache(cachedX509Svids: () => number): void;
  readonly workloadApi: WorkloadApiObserver;
}

export function createAgentMetrics(registry: Registry, clock: Clock): AgentMetrics {
  // Prefix without "process_": prom-client's own names start with it (process_cpu_seconds_total).
  collectDefaultMetrics({ register: registry, prefix: 'sigil_agent_' });
  const registers = [registry];
  let cachedX509Svids = () => 0;
  const sync = { connected: false, sinceMs: clock.nowMs() };

  const attestations = new Counter({
    name: 'sigil_agent_attestation_attempts_total',
    help: 'Node attestation attempts by outcome (success, refused, rate-limited, stale-bundle, unavailable)',
    labelNames: ['outcome'],
    registers,
  });
  const attestedAt = new Gauge({
    name: 'sigil_agent_attestation_last_success_timestamp_seconds',
    help: 'When (Unix seconds) this agent last attested successfully; 0 when it reused a saved SVID',
    registers,
  });
  const connected = new Gauge({
    name: 'sigil_agent_sync_connected',
    help: '1 while the entry sync stream with the server delivers updates, else 0',
    registers,
  });
  const revision = new Gauge({
    name: 'sigil_agent_sync_revision',
    help: 'Entry revision of the last sync update applied',
    registers,
  });
  const updatedAt = new Gauge({
    name: 'sigil_agent_sync_last_update_timestamp_seconds',
    help: 'When (Unix seconds) the last sync update was applied',
    registers,
  });
  new Gauge({
    name: 'sigil_agent_sync_lag_seconds',
    help: 'Seconds the agent may be behind the server: 0 while the sync stream is connected (every change is pushed), else the time since it was last connected',
    registers,
    collect() {
      this.set(sync.connected ? 0 : Math.max(0, (clock.nowMs() - sync.sinceMs) / 1000));
    },
  });
  const updates = new Counter({
    name: 'sigil_agent_sync_updates_total',
    help: 'Sync updates (snapshots and deltas) applied',
    registers,
  });
  const reconnects = new Counter({
    name: 'sigil_agent_sync_reconnects_total',
    help: 'Sync streams that failed or were ended by the server, each followed by a reconnect with backoff',
    registers,
  });
  new Gauge({
    name: 'sigil_agent_x509_svids_cached',
    help: 'Workload X.509-SVIDs held and not expired (sampled at scrape)',
    registers,
    collect() {
      this.set(cachedX509Svids());
    },
  });
  const minted = new Counter({
    name: 'sigil_agent_svids_minted_total',
    help: 'Workload SVIDs received from the server, by kind (x509, jwt)',
    labelNames: ['kind'],
    registers,
  });
  const mintFailures = new Counter({
    name: 'sigil_agent_svid_mint_failures_total',
    help: 'Workload SVIDs asked of the server and not received (refused or failed), by kind (x509, jwt)',
    labelNames: ['kind'],
    registers,
  });
  const expired = new Counter({
    name: 'sigil_agent_x509_svids_expired_total',
    help: 'Workload X.509-SVIDs dropped at their expiry because they could not be renewed in time',
    registers,
  });
  const errors = new Counter({
    name: 'sigil_agent_errors_total',
    help: 'Errors logged, by agent component (sync, identity, manager, workload-api, svid-store, server-client, agent)',
    labelNames: ['component'],
    registers,
  });
  const streamsOpen = new Gauge({
    name: 'sigil_agent_workload_api_streams_open',
    help: 'Workload API streams open, by RPC',
    labelNames: ['rpc'],
    registers,
  });
  const calls = new Counter({
    name: 'sigil_agent_workload_api_calls_total',
    help: 'Workload API calls ended, by RPC and gRPC status code (a stream counts when it ends)',
    labelNames: ['rpc', 'code'],
    registers,
  });
  const refusals = new Counter({
    name: 'sigil_agent_workload_api_refusals_total',
    help: 'Workload API connections refused before any call (peer-credentials, uid-cap, total-cap)',
    labelNames: ['reason'],
    registers,
  });
  // Series that exist from the start, so that rate() and dashboards see 0 rather than no data.
  for (const kind of ['x509', 'jwt']) {
    minted.inc({ kind }, 0);
    mintFailures.inc({ kind }, 0);
  }
  connected.set(0);

  return {
    attested(outcome) {
      attestations.inc({ outcome });
      if (outcome === 'success') attestedAt.set(Math.floor(clock.nowMs() / 1000));
    },
    syncConnected(isConnected) {
      if (isConnected !== sync.connected) sync.sinceMs = clock.nowMs();
      sync.connected = isConnected;
      connected.set(isConnected ? 1 : 0);
    },
    syncApplied(applied) {
      revision.set(applied);
      updatedAt.set(Math.floor(clock.nowMs() / 1000));
      updates.inc();
    },
    syncFailed: () => reconnects.inc(),
    minted: (kind, count) => minted.inc({ kind }, count),
    mintFailed: (kind, count) => mintFailures.inc({ kind }, count),
    expiredDropped: (count) => expired.inc(count),
    loggedError: (component) => errors.inc({ component }),
    sampleCache(count) {
      cachedX509Svids = count;
    },
    workloadApi: {
      streamOpened: (rpc) => streamsOpen.inc({ rpc }),
      streamClosed: (rpc) => streamsOpen.dec({ rpc }),
      callEnded: (rpc, code) => calls.inc({ rpc, code }),
      connectionRefused: (reason) => refusals.inc({ reason }),
    },
  };
}
