import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isSigilError } from '../spiffe/errors.js';
import { checkProxyConfig, loadProxyConfig } from './config.js';
import { DEFAULT_LIMITS } from './limits.js';
import { DEFAULT_SERVICE_SETTINGS } from './services/config.js';

const INBOUND = { name: 'api', listen: '127.0.0.1:15001', app: '127.0.0.1:8080' };
const OUTBOUND = {
  name: 'billing',
  listen: '127.0.0.1:16001',
  upstream: '10.0.0.2:15001',
  server_ids: ['spiffe://example.org/billing'],
};

function problems(raw: unknown): string[] {
  try {
    checkProxyConfig(raw, 'proxy.yaml');
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

describe('checkProxyConfig: workload_api_owner', () => {
  it('names the uid of an agent that runs as its own user, and refuses anything else', () => {
    const base = { inbound: [INBOUND] };
    expect(checkProxyConfig(base, 'proxy.yaml').workloadApiOwner).toBeUndefined();
    expect(checkProxyConfig({ ...base, workload_api_owner: 998 }, 'proxy.yaml').workloadApiOwner).toBe(998);
    expect(problems({ ...base, workload_api_owner: 'sigil' })).toEqual([
      'workload_api_owner: must be a uid, a whole number (got "sigil")',
    ]);
  });
});

describe('checkProxyConfig: spiffe_id', () => {
  it('is optional, and parsed as a workload SPIFFE ID when set', () => {
    const base = { inbound: [INBOUND] };
    expect(checkProxyConfig(base, 'proxy.yaml').spiffeId).toBeNull();
    expect(checkProxyConfig({ ...base, spiffe_id: 'spiffe://example.org/web' }, 'proxy.yaml').spiffeId).toBe(
      'spiffe://example.org/web',
    );
  });

  it('refuses a value that is not a SPIFFE ID of a workload, naming spiffe_id', () => {
    const base = { inbound: [INBOUND] };
    expect(problems({ ...base, spiffe_id: 'http://example.org/web' })).toEqual([
      'spiffe_id: SPIFFE ID "http://example.org/web" must start with "spiffe://" (lowercase scheme)',
    ]);
    expect(problems({ ...base, spiffe_id: 'spiffe://example.org' })).toEqual([
      'spiffe_id: SPIFFE ID "spiffe://example.org" must have a path (a trust domain ID cannot name a workload)',
    ]);
    expect(problems({ ...base, spiffe_id: 42 })).toEqual(['spiffe_id: SPIFFE ID "42" must be a string']);
  });
});

describe('checkProxyConfig: limits', () => {
  it('uses safe defaults for every listener when nothing is set', () => {
    const config = checkProxyConfig({ inbound: [INBOUND], outbound: [OUTBOUND] }, 'proxy.yaml');
    expect(config.limits).toEqual(DEFAULT_LIMITS);
    expect(config.inbound[0]!.limits).toEqual(DEFAULT_LIMITS);
    expect(config.outbound[0]!.limits).toEqual(DEFAULT_LIMITS);
    expect(config.pathNormalization).toEqual({
      escapedSlashes: 'reject',
      pathParameters: 'reject',
      doubleEncoding: 'reject',
    });
  });

  it('applies top-level limits everywhere and a listener own limits on top, key by key', () => {
    const config = checkProxyConfig(
      {
        limits: { max_connections: 500, header_timeout: '5s', tcp_idle_timeout: '30m' },
        inbound: [{ ...INBOUND, limits: { max_connections: 4096, idle_timeout: 90 } }],
        outbound: [OUTBOUND],
        path_normalization: { escaped_slashes: 'unescape', path_parameters: 'keep' },
      },
      'proxy.yaml',
    );
    expect(config.limits).toMatchObject({
      maxConnections: 500,
      headerTimeoutMs: 5_000,
      tcpIdleTimeoutMs: 1_800_000,
    });
    expect(config.inbound[0]!.limits).toEqual({
      ...DEFAULT_LIMITS,
      maxConnections: 4096,
      headerTimeoutMs: 5_000,
      idleTimeoutMs: 90_000,
      tcpIdleTimeoutMs: 1_800_000,
    });
    expect(config.outbound[0]!.limits).toBe(config.limits);
    expect(config.pathNormalization.escapedSlashes).toBe('unescape');
    expect(Object.isFrozen(config.inbound[0]!.limits)).toBe(true);
  });

  it('reports every bad limit by dotted path with the value found', () => {
    expect(
      problems({
        limits: { max_connections: 0, header_timeout: '0s', request_timeout: 'soon', idle_timout: '1s' },
        inbound: [{ ...INBOUND, limits: { max_concurrent_streams: 1.5, stream_idle_timeout: '30d' } }],
        path_normalization: { escaped_slashes: 'redirect' },
      }),
    ).toEqual([
      'limits.max_connections: must be a whole number from 1 to 9007199254740991 (got 0)',
      'limits.header_timeout: "0s" must be greater than zero (examples: 90s, 30m, 1h)',
      'limits.request_timeout: "soon" is not a duration (examples: 90s, 30m, 1h)',
      'limits.idle_timout: unknown key (known keys: max_connections, handshake_timeout, header_timeout, request_timeout, idle_timeout, stream_idle_timeout, max_concurrent_streams, tcp_idle_timeout)',
      'path_normalization.escaped_slashes: must be one of reject, unescape, keep (got "redirect")',
      'inbound[0].limits.max_concurrent_streams: must be a whole number from 1 to 2147483647 (got 1.5)',
      'inbound[0].limits.stream_idle_timeout: must be at most 2147483647ms, about 24 days (got "30d")',
    ]);
  });

  it('refuses a header timeout longer than the request timeout, and a listener named admin', () => {
    expect(
      problems({
        limits: { header_timeout: '10m' },
        inbound: [{ ...INBOUND, name: 'admin' }],
      }),
    ).toEqual([
      'limits.header_timeout: must not exceed request_timeout (600000ms > 300000ms): the head is part of the request',
      'inbound[0].name: "admin" names the admin port in metrics and logs; choose another name',
    ]);
  });
});

describe('deploy/proxy.example.yaml', () => {
  it('loads, with the limits and path_normalization it documents', () => {
    const file = fileURLToPath(new URL('../../deploy/proxy.example.yaml', import.meta.url));
    const config = loadProxyConfig(file);
    expect(config.limits).toEqual(DEFAULT_LIMITS);
    expect(config.inbound[0]!.limits).toEqual({ ...DEFAULT_LIMITS, maxConnections: 4096 });
    expect(config.pathNormalization).toEqual({
      escapedSlashes: 'reject',
      pathParameters: 'reject',
      doubleEncoding: 'reject',
    });
    // The services block spells out the defaults: it must say what the proxy does.
    const orders = config.services.find((service) => service.name === 'orders')!;
    expect(orders.endpoints).toHaveLength(2);
    const { name: _name, serverIds: _ids, endpoints: _endpoints, dns: _dns, ...settings } = orders;
    expect(settings).toEqual(DEFAULT_SERVICE_SETTINGS);
  });
});

describe('checkProxyConfig: routes_file', () => {
  it('is a path relative to the config file, absent by default', () => {
    const base = { inbound: [INBOUND] };
    expect(checkProxyConfig(base, '/etc/sigil/proxy.yaml').routesFile).toBeNull();
    expect(
      checkProxyConfig({ ...base, routes_file: 'routes.yaml' }, '/etc/sigil/proxy.yaml').routesFile,
    ).toBe('/etc/sigil/routes.yaml');
    expect(
      checkProxyConfig({ ...base, routes_file: '/srv/r.yaml' }, '/etc/sigil/proxy.yaml').routesFile,
    ).toBe('/srv/r.yaml');
    expect(problems({ ...base, routes_file: 42 })).toEqual(['routes_file: must be a file path (got "42")']);
    expect(problems({ ...base, routes_file: '' })).toEqual(['routes_file: must be a file path (got "")']);
  });
});
