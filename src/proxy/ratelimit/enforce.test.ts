import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { createProxyMetrics } from '../metrics.js';
import { RecordingLogger } from '../testing.test-support.js';
import { createRateLimitGate, OTHER_PRINCIPALS } from './enforce.js';
import type { RateLimitConfig } from './limiter.js';

const A = 'spiffe://example.org/a';
const OWN = 'spiffe://example.org/api';

function gate(config: Partial<RateLimitConfig>, maxPrincipalLabels?: number) {
  const clock = new ManualClock();
  const registry = new Registry();
  const logger = new RecordingLogger();
  const g = createRateLimitGate({
    listener: 'api',
    config: { total: null, perCaller: null, overrides: [], ...config },
    clock,
    metrics: createProxyMetrics(registry),
    logger,
    ownId: () => OWN,
    maxPrincipalLabels,
  });
  const counts = async () => {
    const metric = await registry.getSingleMetric('sigil_proxy_rate_limited_total')?.get();
    return (metric?.values ?? []).map((v) => ({ ...v.labels, value: v.value }) as Record<string, unknown>);
  };
  return { clock, logger, gate: g, counts };
}

describe('createRateLimitGate', () => {
  it('counts refusals by caller and limit, plaintext callers under "plaintext"', async () => {
    const { gate: g, counts } = gate({
      total: { requestsPerSecond: 1, burst: 3 },
      perCaller: { requestsPerSecond: 1, burst: 2 },
    });
    for (let i = 0; i < 4; i++) g.admit(A);
    expect(g.admit(null)).toBeNull();
    expect(g.admit(null)).toEqual({ limit: 'total', retryAfterMs: 1000 });
    expect(await counts()).toEqual([
      { listener: 'api', principal: A, limit: 'per_caller', value: 2 },
      { listener: 'api', principal: 'plaintext', limit: 'total', value: 1 },
    ]);
  });

  it('logs one line per caller per 10 s, carrying the count held back', async () => {
    const { gate: g, logger, clock } = gate({ perCaller: { requestsPerSecond: 0.1, burst: 1 } });
    for (let i = 0; i < 50; i++) g.admit(A);
    g.admit('spiffe://example.org/b');
    g.admit('spiffe://example.org/b');
    const lines = () => logger.find('Rate limited');
    expect(lines().map((l) => l.fields.source_id)).toEqual([A, 'spiffe://example.org/b']);
    expect(lines()[0]!.fields).toMatchObject({
      listener: 'api',
      source_id: A,
      destination_id: OWN,
      limit: 'per_caller',
      retry_after_ms: 10_000,
    });
    await clock.advance(9_000);
    g.admit(A);
    expect(lines()).toHaveLength(2);
    await clock.advance(1_000);
    // The bucket refilled at 10 s: take the token, then be refused again.
    expect(g.admit(A)).toBeNull();
    g.admit(A);
    expect(lines()).toHaveLength(3);
    expect(lines()[2]!.fields.similar_not_logged).toBe(49);
  });

  it('caps the principal label values, counting the rest as "other"', async () => {
    const { gate: g, counts, logger } = gate({ perCaller: { requestsPerSecond: 1, burst: 1 } }, 2);
    for (let i = 0; i < 10; i++) for (let j = 0; j < 2; j++) g.admit(`spiffe://example.org/c${i}`);
    const samples = await counts();
    expect(samples.map((s) => s.principal)).toEqual([
      'spiffe://example.org/c0',
      'spiffe://example.org/c1',
      OTHER_PRINCIPALS,
    ]);
    expect(samples.find((s) => s.principal === OTHER_PRINCIPALS)?.value).toBe(8);
    // The callers past the cap share one log pacing too: one line for all eight.
    expect(logger.find('Rate limited')).toHaveLength(3);
  });

  it('admits everything and counts nothing while under the limits', async () => {
    const { gate: g, counts, logger } = gate({ total: { requestsPerSecond: 1, burst: 100 } });
    for (let i = 0; i < 100; i++) expect(g.admit(A)).toBeNull();
    expect(await counts()).toEqual([]);
    expect(logger.entries).toEqual([]);
  });
});
