import { EventEmitter } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../spiffe/clock.js';
import { capConnections, closeWhenIdle, createListenerGuard } from './guard.js';
import { DEFAULT_LIMITS } from './limits.js';
import { createProxyMetrics } from './metrics.js';
import { RecordingLogger } from './testing.test-support.js';

function guardWithClock(limits = DEFAULT_LIMITS) {
  const clock = new ManualClock();
  const registry = new Registry();
  const logger = new RecordingLogger();
  const guard = createListenerGuard({
    listener: 'in',
    limits,
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

describe('capConnections', () => {
  it('counts a failed accept on a listening server instead of letting it end the process', async () => {
    const { guard, count } = guardWithClock();
    const server = createServer();
    capConnections(server, guard);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
      expect(() => server.emit('error', emfile)).not.toThrow();
      expect(await count('sigil_proxy_refusals_total', { reason: 'accept-failed' })).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('closeWhenIdle', () => {
  /** The parts of a net.Socket it reads: byte counters, destroy, close. */
  class FakeSocket extends EventEmitter {
    bytesRead = 0;
    bytesWritten = 0;
    destroyed = false;
    destroy() {
      this.destroyed = true;
      this.emit('close');
    }
  }

  it('closes a pipe after tcp_idle_timeout without a byte, and not while bytes move', async () => {
    const { clock, guard, count } = guardWithClock({ ...DEFAULT_LIMITS, tcpIdleTimeoutMs: 10_000 });
    const socket = new FakeSocket();
    closeWhenIdle(socket as unknown as Socket, guard, {});
    for (let i = 0; i < 10; i++) {
      await clock.advance(4_000);
      socket.bytesRead += 1;
    }
    expect(socket.destroyed).toBe(false);
    // The last byte came 40s in; the check after it resets the quiet period, the next ones close.
    await clock.advance(9_999);
    expect(socket.destroyed).toBe(false);
    await clock.advance(5_001);
    expect(socket.destroyed).toBe(true);
    expect(await count('sigil_proxy_timeouts_total', { timeout: 'tcp-idle' })).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('arms nothing more once the socket has closed', async () => {
    const { clock, guard } = guardWithClock();
    const socket = new FakeSocket();
    closeWhenIdle(socket as unknown as Socket, guard, {});
    expect(clock.pendingTimers).toBe(1);
    socket.destroy();
    expect(clock.pendingTimers).toBe(0);
  });
});
