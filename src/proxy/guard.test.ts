import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../spiffe/clock.js';
import { createListenerGuard } from './guard.js';
import { DEFAULT_LIMITS } from './limits.js';
import { createProxyMetrics } from './metrics.js';
import { RecordingLogger } from './testing.test-support.js';

function guardWithClock() {
  const clock = new ManualClock();
  const registry = new Registry();
  const logger = new RecordingLogger();
  const guard = createListenerGuard({
    listener: 'in',
    limits: DEFAULT_LIMITS,
    metrics: createProxyMetrics(registry),
    logger,
    clock,
  });
  const count = async (name: string, labels: Record<string, string>) =>
    (await registry.getSingleMetric(name)!.get()).values.find((v) =>
      Object.entries(labels).every(([k, value]) => v.labels[k] === value),
    )?.value ?? 0;
  return { clock, logger, guard, count };
}

describe('ListenerGuard', () => {
  it('counts every refusal but logs one line per reason per 10s, carrying the count held back', async () => {
    const { clock, logger, guard, count } = guardWithClock();
    for (let i = 0; i < 5; i++) guard.refused('max-connections', { remote: '10.0.0.1' });
    guard.refused('bad-path', { err: 'x' });
    expect(await count('sigil_proxy_refusals_total', { reason: 'max-connections' })).toBe(5);
    expect(logger.find('Refused').map((e) => e.fields.reason)).toEqual(['max-connections', 'bad-path']);
    await clock.advance(9_999);
    guard.refused('max-connections', {});
    expect(logger.find('Refused')).toHaveLength(2);
    await clock.advance(1);
    guard.refused('max-connections', { remote: '10.0.0.2' });
    const last = logger.find('Refused').at(-1)!;
    expect(last.level).toBe('warn');
    expect(last.fields).toEqual({
      listener: 'in',
      reason: 'max-connections',
      remote: '10.0.0.2',
      similar_not_logged: 5,
    });
  });

  it('logs header and request timeouts at warn (limited), idle ones at debug, and counts them all', async () => {
    const { logger, guard, count } = guardWithClock();
    guard.timedOut('header', {});
    guard.timedOut('header', {});
    guard.timedOut('tcp-idle', {});
    guard.timedOut('tcp-idle', {});
    expect(logger.entries.map((e) => [e.level, e.fields.timeout])).toEqual([
      ['warn', 'header'],
      ['debug', 'tcp-idle'],
      ['debug', 'tcp-idle'],
    ]);
    expect(await count('sigil_proxy_timeouts_total', { timeout: 'header' })).toBe(2);
    expect(await count('sigil_proxy_timeouts_total', { timeout: 'tcp-idle' })).toBe(2);
  });
});
