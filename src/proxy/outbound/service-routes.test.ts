// UpstreamService.stackFor: a route rule's stack around the service's own state.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import type { ProxyIdentity } from '../identity.js';
import type { RouteOverrides } from '../routes/index.js';
import { DEFAULT_SERVICE_SETTINGS, type ServiceConfig } from '../services/config.js';
import { NO_OVERRIDES } from './router.test-support.js';
import { type ServiceLog, UpstreamService } from './service.js';
import { createServiceMetrics } from './service-metrics.js';

const CONFIG: ServiceConfig = {
  ...DEFAULT_SERVICE_SETTINGS,
  name: 'orders',
  serverIds: ['spiffe://td/orders'],
  endpoints: [{ address: { host: '127.0.0.1', port: 1 }, serverIds: ['spiffe://td/orders'] }],
  dns: null,
};

function service(): UpstreamService {
  // A service asks its identity only to follow rotations until it connects somewhere.
  const identity = { onUpdate: () => () => {} } as unknown as ProxyIdentity;
  const log = new Proxy({}, { get: () => () => {} }) as ServiceLog;
  return new UpstreamService(CONFIG, {
    identity,
    clock: new ManualClock(),
    random: () => 0.5,
    cells: createServiceMetrics(new Registry()).service('orders'),
    log,
  });
}

describe('UpstreamService.stackFor', () => {
  it('shares the service’s stack for a rule without overrides, and builds one per overrides once', async () => {
    const upstream = service();
    const overrides: RouteOverrides = {
      timeouts: { requestMs: 250, backendRequestMs: null },
      retry: { maxAttempts: 5, onStatuses: [500], backoffMs: null },
    };
    expect(upstream.stackFor(NO_OVERRIDES)).toBe(upstream.send);
    const stack = upstream.stackFor(overrides);
    expect(stack).not.toBe(upstream.send);
    expect(upstream.stackFor(overrides)).toBe(stack);
    expect(upstream.requestTimeoutMsFor(overrides)).toBe(250);
    expect(upstream.requestTimeoutMsFor(NO_OVERRIDES)).toBe(CONFIG.timeouts.requestMs);
    await upstream.close();
  });

  it('rebuilds the rules’ stacks when the service is reconfigured', async () => {
    const upstream = service();
    const overrides: RouteOverrides = {
      ...NO_OVERRIDES,
      timeouts: { requestMs: null, backendRequestMs: 100 },
    };
    const before = upstream.stackFor(overrides);
    const own = upstream.send;
    upstream.reconfigure({ ...CONFIG, timeouts: { ...CONFIG.timeouts, requestMs: 1_000 } });
    expect(upstream.send).not.toBe(own);
    expect(upstream.stackFor(NO_OVERRIDES)).toBe(upstream.send);
    expect(upstream.stackFor(overrides)).not.toBe(before);
    expect(upstream.requestTimeoutMsFor(overrides)).toBe(1_000);
    await upstream.close();
  });
});
