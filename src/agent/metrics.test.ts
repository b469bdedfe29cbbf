// The agent's hooks move the series Prometheus reads; lag is computed at scrape from the clock.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../spiffe/clock.js';
import { createAgentMetrics } from './metrics.js';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('createAgentMetrics', () => {
  it('reports sync lag 0 while connected, and the time since the stream dropped otherwise', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const registry = new Registry();
    const metrics = createAgentMetrics(registry, clock);
    await clock.advance(3_000);
    // Never connected: behind since the agent started.
    expect(sample(await registry.metrics(), 'sigil_agent_sync_lag_seconds')).toBe(3);
    metrics.syncConnected(true);
    metrics.syncApplied(42);
    await clock.advance(60_000);
    let text = await registry.metrics();
    expect(sample(text, 'sigil_agent_sync_lag_seconds')).toBe(0);
    expect(sample(text, 'sigil_agent_sync_connected')).toBe(1);
    expect(sample(text, 'sigil_agent_sync_revision')).toBe(42);
    expect(sample(text, 'sigil_agent_sync_last_update_timestamp_seconds')).toBe(1_700_000_003);
    metrics.syncConnected(false);
    metrics.syncFailed();
    await clock.advance(5_500);
    text = await registry.metrics();
    expect(sample(text, 'sigil_agent_sync_lag_seconds')).toBe(5.5);
    expect(sample(text, 'sigil_agent_sync_connected')).toBe(0);
    expect(sample(text, 'sigil_agent_sync_reconnects_total')).toBe(1);
  });

  it('counts attestations by outcome, SVIDs by kind, Workload API calls by RPC and code', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const registry = new Registry();
    const metrics = createAgentMetrics(registry, clock);
    metrics.attested('unavailable');
    metrics.attested('success');
    metrics.minted('x509', 3);
    metrics.mintFailed('jwt', 1);
    metrics.expiredDropped(2);
    metrics.sampleCache(() => 7);
    metrics.loggedError('sync');
    metrics.workloadApi.streamOpened('FetchX509SVID');
    metrics.workloadApi.streamOpened('FetchX509SVID');
    metrics.workloadApi.streamClosed('FetchX509SVID');
    metrics.workloadApi.callEnded('FetchX509SVID', 'CANCELLED');
    metrics.workloadApi.connectionRefused('uid-cap');
    const text = await registry.metrics();
    expect(sample(text, 'sigil_agent_attestation_attempts_total{outcome="unavailable"}')).toBe(1);
    expect(sample(text, 'sigil_agent_attestation_attempts_total{outcome="success"}')).toBe(1);
    expect(sample(text, 'sigil_agent_attestation_last_success_timestamp_seconds')).toBe(1_700_000_000);
    expect(sample(text, 'sigil_agent_svids_minted_total{kind="x509"}')).toBe(3);
    expect(sample(text, 'sigil_agent_svids_minted_total{kind="jwt"}')).toBe(0);
    expect(sample(text, 'sigil_agent_svid_mint_failures_total{kind="jwt"}')).toBe(1);
    expect(sample(text, 'sigil_agent_x509_svids_expired_total')).toBe(2);
    expect(sample(text, 'sigil_agent_x509_svids_cached')).toBe(7);
    expect(sample(text, 'sigil_agent_errors_total{component="sync"}')).toBe(1);
    expect(sample(text, 'sigil_agent_workload_api_streams_open{rpc="FetchX509SVID"}')).toBe(1);
    expect(sample(text, 'sigil_agent_workload_api_calls_total{rpc="FetchX509SVID",code="CANCELLED"}')).toBe(
      1,
    );
    expect(sample(text, 'sigil_agent_workload_api_refusals_total{reason="uid-cap"}')).toBe(1);
  });

  it('names the default metrics sigil_agent_process_… and sigil_agent_nodejs_…, the word said once', async () => {
    const registry = new Registry();
    createAgentMetrics(registry, new ManualClock());
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).toContain('sigil_agent_process_cpu_seconds_total');
    expect(names).toContain('sigil_agent_nodejs_eventloop_lag_p99_seconds');
    expect(names.filter((n) => /process_process/.test(n))).toEqual([]);
  });
});
