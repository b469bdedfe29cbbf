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
