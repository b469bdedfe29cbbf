// Server metrics on a registry passed in (never prom-client's global one), named
// sigil_server_<what>_<unit|total> with bounded labels.
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';
import type { CaObserver } from './ca/rotation-health.js';

export interface ServerMetrics {
  readonly svidsIssued: Counter<'type' | 'caller'>;
  readonly svidIssueSeconds: Histogram<'type'>;
  readonly adminRequests: Counter<'method' | 'route' | 'status'>;
  readonly adminRequestSeconds: Histogram<'method' | 'route'>;
  readonly adminAuthFailures: Counter<'reason'>;
  readonly caExpiresAtSeconds: Gauge<'type'>;
  readonly caRotationFailures: Counter;
  readonly caRotationConsecutiveFailures: Gauge;
  readonly caRotationLastSuccessSeconds: Gauge;
  readonly entries: Gauge;
  readonly agentApiRefusals: Counter<'reason'>;
  readonly adminApiRefusals: Counter<'reason'>;
  readonly agentSyncPendingMessages: Gauge;
  readonly agentSyncBehind: Counter<'outcome'>;
}

export function createServerMetrics(registry: Registry): ServerMetrics {
  // Prefix without "process_": prom-client's own names start with it (process_cpu_seconds_total).
  collectDefaultMetrics({ register: registry, prefix: 'sigil_server_' });
  return {
    svidsIssued: new Counter({
      name: 'sigil_server_svids_issued_total',
      help: 'SVIDs minted, by type (x509, jwt) and caller (admin, agent)',
      labelNames: ['type', 'caller'],
      registers: [registry],
    }),
    svidIssueSeconds: new Histogram({
      name: 'sigil_server_svid_issue_duration_seconds',
      help: 'Time to mint one SVID, CSR check and signing included',
      labelNames: ['type'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers: [registry],
    }),
    adminRequests: new Counter({
      name: 'sigil_server_admin_requests_total',
      help: 'Admin API requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    adminRequestSeconds: new Histogram({
      name: 'sigil_server_admin_request_duration_seconds',
      help: 'Admin API request latency',
      labelNames: ['method', 'route'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    adminAuthFailures: new Counter({
      name: 'sigil_server_admin_auth_failures_total',
      help: 'Admin API callers refused, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    caExpiresAtSeconds: new Gauge({
      name: 'sigil_server_ca_expires_at_seconds',
      help: 'Expiry (Unix seconds) of the active signing authority, by type (x509, jwt)',
      labelNames: ['type'],
      registers: [registry],
    }),
    caRotationFailures: new Counter({
      name: 'sigil_server_ca_rotation_failures_total',
      help: 'Scheduled CA rotation checks that failed (each is retried with backoff)',
      registers: [registry],
    }),
    caRotationConsecutiveFailures: new Gauge({
      name: 'sigil_server_ca_rotation_consecutive_failures',
      help: 'Failed CA rotation checks since the last success (0 when rotation is healthy)',
      registers: [registry],
    }),
    caRotationLastSuccessSeconds: new Gauge({
      name: 'sigil_server_ca_rotation_last_success_seconds',
      help: 'When (Unix seconds) a scheduled CA rotation check last succeeded',
      registers: [registry],
    }),
    entries: new Gauge({
      name: 'sigil_server_entries',
      help: 'Registration entries in the store (sampled at scrape)',
      registers: [registry],
    }),
    agentApiRefusals: new Counter({
      name: 'sigil_server_agent_api_refusals_total',
      help: 'Agent API connections and calls refused by a limit (connection-cap, accept-failed, ip-cap, handshake, alpn, attest-rate, sign-rate)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    adminApiRefusals: new Counter({
      name: 'sigil_server_admin_api_refusals_total',
      help: 'Admin API connections refused by a limit (connection-cap, accept-failed, handshake, header-timeout, request-timeout, header-too-large, bad-request)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    agentSyncPendingMessages: new Gauge({
      name: 'sigil_server_agent_sync_pending_messages',
      help: 'Sync updates held for agents that are not reading their stream, all streams together (each stream holds a bounded number)',
      registers: [registry],
    }),
    agentSyncBehind: new Counter({
      name: 'sigil_server_agent_sync_behind_total',
      help: 'Agent sync streams that fell behind, by outcome: snapshot (queued updates replaced by one fresh snapshot), closed (unread past agent_api.sync_drain_timeout)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}

/** The exposition served at /metrics (admin listeners and metrics_bind), with sampled gauges fresh. */
export async function renderServerMetrics(
  registry: Registry,
  metrics: ServerMetrics,
  countEntries: () => Promise<number>,
): Promise<{ contentType: string; body: string }> {
  metrics.entries.set(await countEntries());
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** Feeds the CA's rotation outcomes and active-authority expiries into `metrics`. */
export function caMetricsObserver(metrics: ServerMetrics): CaObserver {
  return {
    activeAuthority: (kind, notAfterMs) =>
      metrics.caExpiresAtSeconds.set({ type: kind }, Math.floor(notAfterMs / 1000)),
    rotationFailed: (consecutiveFailures) => {
      metrics.caRotationFailures.inc();
      metrics.caRotationConsecutiveFailures.set(consecutiveFailures);
    },
    rotationSucceeded: (atMs) => {
      metrics.caRotationConsecutiveFailures.set(0);
      metrics.caRotationLastSuccessSeconds.set(Math.floor(atMs / 1000));
    },
  };
}
