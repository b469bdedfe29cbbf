import { describe, expect, it } from 'vitest';
import { isSigilError } from '../../spiffe/errors.js';
import { checkProxyConfig } from '../config.js';
import { DEFAULT_SERVICE_SETTINGS, MAX_ENDPOINTS, MAX_SERVICES } from './config.js';

const ID = 'spiffe://example.org/orders';
const LISTENER = { name: 'orders', listen: '127.0.0.1:7001', service: 'orders' };
const SERVICE = { name: 'orders', server_ids: [ID], endpoints: [{ address: '10.0.0.1:8443' }] };

/** The problems of a config with `services` and `outbound` (defaulting to one listener per service). */
function problems(services: unknown[], outbound: unknown[] = [LISTENER]): string[] {
  try {
    checkProxyConfig({ outbound, services }, 'proxy.yaml');
  } catch (err) {
    if (isSigilError(err, 'ERR_CONFIG_INVALID'))
      return err.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim());
    throw err;
  }
  throw new Error('expected ERR_CONFIG_INVALID');
}

/** The problems of one service named orders, with `fields` over SERVICE. */
const serviceProblems = (fields: Record<string, unknown>) => problems([{ ...SERVICE, ...fields }]);

describe('services: what a config produces', () => {
  it('reads the spec example: static endpoints, an endpoint that overrides server_ids, every setting', () => {
    const config = checkProxyConfig(
      {
        outbound: [LISTENER],
        services: [
          {
            name: 'orders',
            server_ids: [ID],
            endpoints: [
              { address: '10.0.0.1:8443' },
              { address: '[fd00::2]:8443', server_ids: ['spiffe://example.org/orders-canary'] },
            ],
            load_balancer: { policy: 'round-robin', slow_start: 0, ewma_decay: '5s' },
            timeouts: { connect: '2s', request: 0, try: '500ms' },
            retries: {
              max_attempts: 1,
              on_statuses: [503],
              non_idempotent: true,
              backoff: { base: '10ms', max: '1s' },
              budget: { ratio: 0, min_per_second: 0, window: '60s' },
            },
            limits: { max_connections: 8, max_pending: 16, max_concurrent: 32 },
            outlier_detection: {
              consecutive_failures: 0,
              failure_rate: 1,
              min_requests: 5,
              window: '1m',
              base_ejection: '10s',
              max_ejection: '10s',
              max_ejected_share: 0,
            },
          },
        ],
      },
      'proxy.yaml',
    );
    expect(config.outbound[0]).toMatchObject({ name: 'orders', service: 'orders' });
    expect(config.services).toEqual([
      {
        name: 'orders',
        serverIds: [ID],
        endpoints: [
          { address: { host: '10.0.0.1', port: 8443 }, serverIds: [ID] },
          { address: { host: 'fd00::2', port: 8443 }, serverIds: ['spiffe://example.org/orders-canary'] },
        ],
        dns: null,
        loadBalancer: { policy: 'round-robin', slowStartMs: 0, ewmaDecayMs: 5_000 },
        timeouts: { connectMs: 2_000, requestMs: 0, tryMs: 500 },
        retries: {
          maxAttempts: 1,
          onStatuses: [503],
          nonIdempotent: true,
          backoff: { baseMs: 10, maxMs: 1_000 },
          budget: { ratio: 0, minPerSecond: 0, windowMs: 60_000 },
        },
        limits: { maxConnections: 8, maxPending: 16, maxConcurrent: 32 },
        outlierDetection: {
          consecutiveFailures: 0,
          failureRate: 1,
          minRequests: 5,
          windowMs: 60_000,
          baseEjectionMs: 10_000,
          maxEjectionMs: 10_000,
          maxEjectedShare: 0,
        },
        pipelining: null,
      },
    ]);
  });

  it('gives a service with only a name and endpoints the documented defaults, deep-frozen', () => {
    const [service] = checkProxyConfig({ outbound: [LISTENER], services: [SERVICE] }, 'proxy.yaml').services;
    expect(service).toMatchObject(DEFAULT_SERVICE_SETTINGS);
    expect(DEFAULT_SERVICE_SETTINGS).toEqual({
      loadBalancer: { policy: 'p2c-ewma', slowStartMs: 10_000, ewmaDecayMs: 10_000 },
      timeouts: { connectMs: 10_000, requestMs: 15_000, tryMs: 0 },
      retries: {
        maxAttempts: 3,
        onStatuses: [502, 503, 504],
        nonIdempotent: false,
        backoff: { baseMs: 25, maxMs: 250 },
        budget: { ratio: 0.2, minPerSecond: 10, windowMs: 10_000 },
      },
      limits: { maxConnections: 1024, maxPending: 1024, maxConcurrent: 1024 },
      outlierDetection: {
        consecutiveFailures: 5,
        failureRate: 0.5,
        minRequests: 50,
        windowMs: 30_000,
        baseEjectionMs: 30_000,
        maxEjectionMs: 300_000,
        maxEjectedShare: 0.5,
      },
      pipelining: null,
    });
    expect(Object.isFrozen(service!.endpoints![0]!.address)).toBe(true);
    expect(Object.isFrozen(service!.retries.onStatuses)).toBe(true);
  });

  it('turns a legacy upstream listener into a one-endpoint service of its name with default settings', () => {
    const config = checkProxyConfig(
      {
        outbound: [
          LISTENER,
          { name: 'legacy', listen: '127.0.0.1:7002', upstream: '10.0.0.5:8443', server_ids: [ID] },
        ],
        services: [SERVICE],
      },
      'proxy.yaml',
    );
    expect(config.outbound.map((o) => o.service)).toEqual(['orders', 'legacy']);
    expect(config.services.map((s) => s.name)).toEqual(['orders', 'legacy']);
    expect(config.services[1]).toEqual({
      name: 'legacy',
      serverIds: [ID],
      endpoints: [{ address: { host: '10.0.0.5', port: 8443 }, serverIds: [ID] }],
      dns: null,
      ...DEFAULT_SERVICE_SETTINGS,
    });
  });

  it('reads dns: A/AAAA with a port, SRV without, type A and min_ttl 5s by default', () => {
    const services = checkProxyConfig(
      {
        outbound: [LISTENER],
        services: [
          { name: 'orders', server_ids: [ID], dns: { name: 'orders.internal', port: 8443 } },
          {
            name: 'v6',
            server_ids: [ID],
            dns: { name: 'v6.internal.', type: 'AAAA', port: 1, min_ttl: '1s' },
          },
          {
            name: 'srv',
            server_ids: [ID],
            dns: { name: '_https._tcp.orders.internal', type: 'SRV', min_ttl: '5m' },
          },
        ],
      },
      'proxy.yaml',
    ).services;
    expect(services.map((s) => [s.endpoints, s.dns])).toEqual([
      [null, { name: 'orders.internal', type: 'A', port: 8443, minTtlMs: 5_000 }],
      [null, { name: 'v6.internal.', type: 'AAAA', port: 1, minTtlMs: 1_000 }],
      [null, { name: '_https._tcp.orders.internal', type: 'SRV', port: null, minTtlMs: 300_000 }],
    ]);
  });
});

describe('services: every problem by dotted path', () => {
  it('links listeners to services: exactly one of service or upstream, and a service that exists', () => {
    expect(
      problems(
        [SERVICE],
        [
          { ...LISTENER, upstream: '10.0.0.1:1', server_ids: [ID] },
          { name: 'bare', listen: '127.0.0.1:7003' },
          { name: 'typo', listen: '127.0.0.1:7004', service: 'ordres' },
          { name: 'ids', listen: '127.0.0.1:7005', service: 'orders', server_ids: [ID] },
          { name: 'orders2', listen: '127.0.0.1:7006', service: 7 },
        ],
      ),
    ).toEqual([
      'outbound[0]: set exactly one of service (a services[].name) or upstream (HOST:PORT, with server_ids)',
      'outbound[1]: set exactly one of service (a services[].name) or upstream (HOST:PORT, with server_ids)',
      'outbound[2].service: "ordres" is not a configured service (services: orders)',
      'outbound[3].server_ids: set server_ids in the service, not the listener that names it',
      'outbound[4].service: "7" is not a configured service (services: orders)',
    ]);
  });

  it('refuses a legacy listener named like a configured service, and a legacy one without server_ids', () => {
    expect(
      problems(
        [SERVICE],
        [
          LISTENER,
          { name: 'orders-legacy', listen: '127.0.0.1:7002', upstream: '10.0.0.5:8443' },
          { ...LISTENER, name: 'orders', upstream: 'x:1', service: undefined, server_ids: [ID] },
        ],
      ),
    ).toEqual([
      'outbound[1].server_ids: name at least one SPIFFE ID the upstream sidecar may present',
      'outbound[2].name: "orders" is used by another listener',
      'outbound[2].name: "orders" is also a services[].name; a listener with upstream makes a service of its own name, so rename one',
    ]);
  });

  it('checks service names, unknown keys and the choice of endpoints or dns', () => {
    expect(
      problems([
        SERVICE,
        { ...SERVICE, weights: 1 },
        { name: 'Orders', server_ids: [ID] },
        { name: 'both', server_ids: [ID], endpoints: [{ address: 'a:1' }], dns: { name: 'a', port: 1 } },
      ]),
    ).toEqual([
      'services[1].weights: unknown key (known keys: name, server_ids, endpoints, dns, load_balancer, timeouts, retries, limits, outlier_detection, pipelining)',
      'services[1].name: "orders" is used by another service',
      'services[2].name: must be a name of lowercase letters, digits, "-" and "_" (got "Orders")',
      'services[2]: set exactly one of endpoints (static addresses) or dns',
      'services[3]: set exactly one of endpoints (static addresses) or dns',
    ]);
  });

  it('checks endpoints: count, address, duplicates, and that every endpoint has server IDs', () => {
    expect(
      problems([
        { name: 'orders', endpoints: [] },
        {
          name: 'a',
          endpoints: [
            { address: '10.0.0.1' },
            { address: ':8443' },
            { address: '10.0.0.1:0' },
            { address: 'b:1', server_ids: ['https://example.org/x'] },
            { address: 'b:1', server_ids: [] },
            { address: 'c:1', port: 1 },
          ],
        },
      ]),
    ).toEqual([
      'services[0].endpoints: list at least one endpoint, or use dns',
      'services[1].endpoints[0].address: "10.0.0.1" is not HOST:PORT',
      'services[1].endpoints[0].server_ids: name at least one SPIFFE ID the endpoint may present (here or in services[1].server_ids)',
      'services[1].endpoints[1].address: ":8443" must name a host and a port from 1 to 65535',
      'services[1].endpoints[1].server_ids: name at least one SPIFFE ID the endpoint may present (here or in services[1].server_ids)',
      'services[1].endpoints[2].address: "10.0.0.1:0" must name a host and a port from 1 to 65535',
      'services[1].endpoints[2].server_ids: name at least one SPIFFE ID the endpoint may present (here or in services[1].server_ids)',
      'services[1].endpoints[3].server_ids[0]: SPIFFE ID "https://example.org/x" must start with "spiffe://" (lowercase scheme)',
      'services[1].endpoints[4].address: "b:1" is listed twice',
      'services[1].endpoints[4].server_ids: name at least one SPIFFE ID the endpoint may present',
      'services[1].endpoints[5].port: unknown key (known keys: address, server_ids)',
      'services[1].endpoints[5].server_ids: name at least one SPIFFE ID the endpoint may present (here or in services[1].server_ids)',
    ]);
  });

  it('bounds the number of endpoints and of services', () => {
    const endpoints = Array.from({ length: MAX_ENDPOINTS + 1 }, (_, i) => ({
      address: `10.0.${i >> 8}.${i & 255}:1`,
    }));
    expect(serviceProblems({ endpoints })).toEqual([
      'services[0].endpoints: must have at most 256 items (got 257)',
    ]);
    const services = Array.from({ length: MAX_SERVICES + 1 }, (_, i) => ({ ...SERVICE, name: `s${i}` }));
    expect(problems(services, [{ ...LISTENER, service: 's0' }])).toEqual([
      'services: must have at most 256 items (got 257)',
    ]);
  });

  it('checks dns: name, type, port only where records lack it, min_ttl bounds, and service server_ids', () => {
    expect(
      problems([
        { name: 'orders', dns: { name: 'bad name', type: 'CNAME', min_ttl: '500ms' } },
        { name: 'b', server_ids: [ID], dns: { name: 'a.internal' } },
        { name: 'c', server_ids: [ID], dns: { name: '_x._tcp.a', type: 'SRV', port: 443, min_ttl: '1h' } },
        { name: 'd', server_ids: [ID], dns: { name: `${'a'.repeat(64)}.internal`, port: 70_000, ttl: 5 } },
      ]),
    ).toEqual([
      'services[0].dns.name: must be a DNS name (got "bad name")',
      'services[0].dns.type: must be one of A, AAAA, SRV (got "CNAME")',
      'services[0].dns.port: is required for type A',
      'services[0].dns.min_ttl: must be at least 1s (got "500ms")',
      'services[0].server_ids: name at least one SPIFFE ID the endpoints dns finds may present',
      'services[1].dns.port: is required for type A',
      'services[2].dns.port: SRV records carry the port; remove it',
      'services[2].dns.min_ttl: must be at most 5m (got "1h")',
      'services[3].dns.ttl: unknown key (known keys: name, type, port, min_ttl)',
      `services[3].dns.name: must be a DNS name (got "${'a'.repeat(64)}.internal")`,
      'services[3].dns.port: must be a whole number from 1 to 65535 (got 70000)',
    ]);
  });

  it('bounds load balancer and timeout settings; 0 means none only where the spec says so', () => {
    expect(
      serviceProblems({
        load_balancer: { policy: 'least-request', ewma_decay: 0, slow_start: '2h' },
        timeouts: { connect: 'soon', request: '1s', try: '2s', idle: '1s' },
      }),
    ).toEqual([
      'services[0].load_balancer.policy: must be one of p2c-ewma, round-robin (got "least-request")',
      'services[0].load_balancer.slow_start: must be at most 1h (got "2h")',
      'services[0].load_balancer.ewma_decay: "0" must be a positive number of seconds (examples: 90s, 30m, 1h)',
      'services[0].timeouts.idle: unknown key (known keys: connect, request, try)',
      'services[0].timeouts.connect: "soon" is not a duration (examples: 90s, 30m, 1h)',
      'services[0].timeouts.try: must not exceed timeouts.request (2000ms > 1000ms): the request timeout bounds every try',
    ]);
  });

  it('bounds retries: attempts 1..10, statuses 100..599 once each, backoff order, budget ranges', () => {
    expect(
      serviceProblems({
        retries: {
          max_attempts: 11,
          on_statuses: [99, 503, 503, 600, '502'],
          non_idempotent: 'yes',
          backoff: { base: '1s', max: '100ms' },
          budget: { ratio: 1.5, min_per_second: -1, window: '2m' },
        },
      }),
    ).toEqual([
      'services[0].retries.backoff.max: must not be less than base (100ms < 1000ms)',
      'services[0].retries.max_attempts: must be a whole number from 1 to 10 (got 11)',
      'services[0].retries.on_statuses[0]: must be an HTTP status from 100 to 599 (got 99)',
      'services[0].retries.on_statuses[2]: 503 is listed twice',
      'services[0].retries.on_statuses[3]: must be an HTTP status from 100 to 599 (got 600)',
      'services[0].retries.on_statuses[4]: must be an HTTP status from 100 to 599 (got "502")',
      'services[0].retries.non_idempotent: must be true or false (got "yes")',
      'services[0].retries.budget.ratio: must be a number from 0 to 1 (got 1.5)',
      'services[0].retries.budget.min_per_second: must be a whole number from 0 to 1000000 (got -1)',
      'services[0].retries.budget.window: must be at most 1m (got "2m")',
    ]);
    expect(serviceProblems({ retries: { max_attempts: 0, on_statuses: [], budget: 'none' } })).toEqual([
      'services[0].retries.budget: must be a mapping (got "none")',
      'services[0].retries.max_attempts: must be a whole number from 1 to 10 (got 0)',
      'services[0].retries.on_statuses: list at least one status, or set max_attempts: 1 for no retries',
    ]);
  });

  it('bounds limits and outlier detection', () => {
    expect(
      serviceProblems({
        limits: { max_connections: 0, max_pending: 1.5, max_requests: 1 },
        outlier_detection: {
          consecutive_failures: 1_001,
          failure_rate: -0.1,
          min_requests: 0,
          window: '500ms',
          base_ejection: '1m',
          max_ejection: '30s',
          max_ejected_share: 2,
        },
      }),
    ).toEqual([
      'services[0].limits.max_requests: unknown key (known keys: max_connections, max_pending, max_concurrent)',
      'services[0].limits.max_connections: must be a whole number from 1 to 1000000 (got 0)',
      'services[0].limits.max_pending: must be a whole number from 1 to 1000000 (got 1.5)',
      'services[0].outlier_detection.consecutive_failures: must be a whole number from 0 to 1000 (got 1001)',
      'services[0].outlier_detection.failure_rate: must be a number from 0 to 1 (got -0.1)',
      'services[0].outlier_detection.min_requests: must be a whole number from 1 to 1000000 (got 0)',
      'services[0].outlier_detection.window: must be at least 1s (got "500ms")',
      'services[0].outlier_detection.max_ejected_share: must be a number from 0 to 1 (got 2)',
      'services[0].outlier_detection.max_ejection: must not be less than base_ejection (30000ms < 60000ms)',
    ]);
  });
});
