import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVICE_SETTINGS, type ServiceConfig } from '../services/config.js';
import { overridesNothing, withOverrides } from './route-overrides.js';
import { NO_OVERRIDES } from './router.test-support.js';

const SERVICE: ServiceConfig = {
  ...DEFAULT_SERVICE_SETTINGS,
  name: 'orders',
  serverIds: ['spiffe://td/orders'],
  endpoints: [],
  dns: null,
};

describe('withOverrides', () => {
  it('shares the service’s stack when the rule sets nothing (0s is something: no timeout)', () => {
    expect(overridesNothing(NO_OVERRIDES)).toBe(true);
    expect(overridesNothing({ ...NO_OVERRIDES, timeouts: { requestMs: 0, backendRequestMs: null } })).toBe(
      false,
    );
    expect(withOverrides(SERVICE, NO_OVERRIDES)).toEqual(SERVICE);
  });

  it('lays the rule’s timeouts and retry over the service’s, keeping the rest', () => {
    const config = withOverrides(SERVICE, {
      timeouts: { requestMs: 0, backendRequestMs: 300 },
      retry: { maxAttempts: 5, onStatuses: [500], backoffMs: null },
    });
    expect(config.timeouts).toEqual({ ...SERVICE.timeouts, requestMs: 0, tryMs: 300 });
    expect(config.retries).toEqual({ ...SERVICE.retries, maxAttempts: 5, onStatuses: [500] });
    expect(config.limits).toBe(SERVICE.limits);
  });

  it('takes the rule’s backoff base, raising the cap only when the base is above it', () => {
    const backoff = (backoffMs: number) =>
      withOverrides(SERVICE, { ...NO_OVERRIDES, retry: { maxAttempts: null, onStatuses: null, backoffMs } })
        .retries.backoff;
    expect(backoff(100)).toEqual({ baseMs: 100, maxMs: 250 });
    expect(backoff(1_000)).toEqual({ baseMs: 1_000, maxMs: 1_000 });
  });
});
