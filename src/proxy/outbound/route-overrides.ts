// A route rule's `timeouts` and `retry` (GEP-1731) laid over a service's own settings: the config
// the service builds a rule's stack from (UpstreamService.stackFor), around the service's state.
// Pure; unset fields keep the service's values.
import type { RouteOverrides } from '../routes/index.js';
import type { ServiceConfig } from '../services/config.js';

/** True when the rule changes nothing: it shares the service's own stack. */
export function overridesNothing(overrides: RouteOverrides): boolean {
  return (
    overrides.retry === null &&
    overrides.timeouts.requestMs === null &&
    overrides.timeouts.backendRequestMs === null
  );
}

/** `config` with the rule's try timeout and retry settings in place of the service's. */
export function withOverrides(config: ServiceConfig, overrides: RouteOverrides): ServiceConfig {
  const { timeouts, retry } = overrides;
  const retries = config.retries;
  const baseMs = retry?.backoffMs ?? retries.backoff.baseMs;
  return {
    ...config,
    timeouts: {
      ...config.timeouts,
      requestMs: timeouts.requestMs ?? config.timeouts.requestMs,
      tryMs: timeouts.backendRequestMs ?? config.timeouts.tryMs,
    },
    retries: {
      ...retries,
      maxAttempts: retry?.maxAttempts ?? retries.maxAttempts,
      onStatuses: retry?.onStatuses ?? retries.onStatuses,
      // The service's cap stays, unless the route's base is above it (a cap below the base would
      // quietly shorten every wait the route asked for).
      backoff: { baseMs, maxMs: Math.max(retries.backoff.maxMs, baseMs) },
    },
  };
}
