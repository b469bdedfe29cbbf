// The CA observer keeps the rotation metrics current: expiry gauges follow every activation,
// failures count up and reset on success.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { caMetricsObserver, createServerMetrics } from './metrics.js';

describe('caMetricsObserver', () => {
  it('tracks active expiries, failures and the last success', async () => {
    const registry = new Registry();
    const observer = caMetricsObserver(createServerMetrics(registry));
    observer.activeAuthority('x509', 1_800_000_000_500);
    observer.activeAuthority('x509', 1_900_000_000_000);
    observer.rotationFailed(1);
    observer.rotationFailed(2);
    let text = await registry.metrics();
    expect(text).toContain('sigil_server_ca_expires_at_seconds{type="x509"} 1900000000');
    expect(text).toContain('sigil_server_ca_rotation_failures_total 2');
    expect(text).toContain('sigil_server_ca_rotation_consecutive_failures 2');
    observer.rotationSucceeded(1_700_000_000_000);
    text = await registry.metrics();
    expect(text).toContain('sigil_server_ca_rotation_consecutive_failures 0');
    expect(text).toContain('sigil_server_ca_rotation_last_success_seconds 1700000000');
    expect(text).toContain('sigil_server_ca_rotation_failures_total 2');
  });
});

describe('createServerMetrics', () => {
  it('names the process and Node.js metrics sigil_server_process_… and sigil_server_nodejs_…, the word said once', async () => {
    const registry = new Registry();
    createServerMetrics(registry);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).toContain('sigil_server_process_cpu_seconds_total');
    expect(names).toContain('sigil_server_process_resident_memory_bytes');
    expect(names).toContain('sigil_server_nodejs_heap_size_used_bytes');
    expect(names.filter((n) => /process_process|_(\w+)_\1_/.test(n))).toEqual([]);
  });
});
