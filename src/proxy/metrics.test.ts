// The per-request metrics are counted outside prom-client and exposed at scrape time; these tests
// read them back the way Prometheus does, from the registry's text exposition.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createProxyMetrics, seriesMemo } from './metrics.js';

const CALLER = 'spiffe://example.org/caller';
const SELF = 'spiffe://example.org/self';

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const matches = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (matches) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('proxy request metrics', () => {
  it('exposes counts per class and a cumulative latency histogram per listener, direction and class', async () => {
    const registry = new Registry();
    const metrics = createProxyMetrics(registry);
    const series = metrics.requestSeries('api', 'inbound', CALLER, SELF);
    expect(metrics.requestSeries('api', 'inbound', CALLER, SELF)).toBe(series);
    series.record('2xx', 0.0004);
    series.record('2xx', 0.003);
    series.record('2xx', 20);
    series.record('5xx', 0.02);
    metrics.requestSeries('api', 'inbound', 'plaintext', SELF).record('2xx', 0.0004);

    const text = await registry.metrics();
    const requests = (source: string, cls: string) =>
      sample(text, 'sigil_proxy_requests_total', { source_id: source, destination_id: SELF, class: cls });
    expect(requests(CALLER, '2xx')).toBe(3);
    expect(requests(CALLER, '5xx')).toBe(1);
    expect(requests('plaintext', '2xx')).toBe(1);
    // A class never seen is not exposed at all rather than as a zero.
    expect(requests(CALLER, '4xx')).toBeUndefined();

    const bucket = (le: string) =>
      sample(text, 'sigil_proxy_request_duration_seconds_bucket', { listener: 'api', class: '2xx', le });
    expect(bucket('0.0005')).toBe(2);
    expect(bucket('0.0025')).toBe(2);
    expect(bucket('0.005')).toBe(3);
    expect(bucket('10')).toBe(3);
    expect(bucket('+Inf')).toBe(4);
    expect(sample(text, 'sigil_proxy_request_duration_seconds_count', { class: '2xx' })).toBe(4);
    expect(sample(text, 'sigil_proxy_request_duration_seconds_sum', { class: '2xx' })).toBeCloseTo(
      20.0038,
      6,
    );
    expect(text).toContain('# TYPE sigil_proxy_request_duration_seconds histogram');
  });

  it('keeps counting across scrapes, and resets with the registry', async () => {
    const registry = new Registry();
    const metrics = createProxyMetrics(registry);
    const allow = metrics.authzDecisionCell('api', 'clients#0', 'allow');
    expect(metrics.authzDecisionCell('api', 'clients#0', 'allow')).toBe(allow);
    allow.value += 2;
    const decisions = async () =>
      sample(await registry.metrics(), 'sigil_proxy_authz_decisions_total', {
        rule: 'clients#0',
        result: 'allow',
      });
    expect(await decisions()).toBe(2);
    allow.value++;
    expect(await decisions()).toBe(3);
    const json = await registry.getMetricsAsJSON();
    expect(json.find((m) => m.name === 'sigil_proxy_authz_decisions_total')?.values[0]?.value).toBe(3);

    metrics.requestSeries('api', 'outbound', SELF, CALLER).record('2xx', 0.001);
    registry.resetMetrics();
    const text = await registry.metrics();
    expect(sample(text, 'sigil_proxy_request_duration_seconds_count', { class: '2xx' })).toBeUndefined();
  });

  it('gives a listener the series of the labels asked, remembering only the last pair', async () => {
    const registry = new Registry();
    const metrics = createProxyMetrics(registry);
    const seriesOf = seriesMemo(metrics, 'api', 'inbound');
    const caller = seriesOf(CALLER, SELF);
    expect(seriesOf(CALLER, SELF)).toBe(caller);
    expect(caller).toBe(metrics.requestSeries('api', 'inbound', CALLER, SELF));
    const plaintext = seriesOf('plaintext', SELF);
    expect(plaintext).not.toBe(caller);
    expect(seriesOf(CALLER, 'spiffe://example.org/renamed')).not.toBe(caller);
    seriesOf(CALLER, SELF).record('2xx', 0.001);
    plaintext.record('5xx', 0.001);
    const text = await registry.metrics();
    const requests = (source: string, cls: string) =>
      sample(text, 'sigil_proxy_requests_total', { listener: 'api', source_id: source, class: cls });
    expect(requests(CALLER, '2xx')).toBe(1);
    expect(requests('plaintext', '5xx')).toBe(1);
    expect(requests(CALLER, '5xx')).toBeUndefined();
  });
});
