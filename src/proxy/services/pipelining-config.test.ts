import { describe, expect, it } from 'vitest';
import { isSigilError } from '../../spiffe/errors.js';
import { checkProxyConfig } from '../config.js';

const ID = 'spiffe://example.org/orders';
const LISTENER = { name: 'orders', listen: '127.0.0.1:7001', service: 'orders' };
const SERVICE = { name: 'orders', server_ids: [ID], endpoints: [{ address: '10.0.0.1:8443' }] };

function serviceWith(pipelining: unknown) {
  return checkProxyConfig({ outbound: [LISTENER], services: [{ ...SERVICE, pipelining }] }, 'proxy.yaml')
    .services[0]!;
}

function problemsOf(pipelining: unknown): string[] {
  try {
    serviceWith(pipelining);
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

describe('services[].pipelining', () => {
  it('is off unless set, for configured services and legacy upstream listeners alike', () => {
    expect(serviceWith(undefined).pipelining).toBeNull();
    const legacy = checkProxyConfig(
      { outbound: [{ name: 'api', listen: '127.0.0.1:7002', upstream: '10.0.0.2:8443', server_ids: [ID] }] },
      'proxy.yaml',
    );
    expect(legacy.services[0]!.pipelining).toBeNull();
  });

  it('takes depth, with connections 4 and stall 100ms by default; all three when set', () => {
    expect(serviceWith({ depth: 8 }).pipelining).toEqual({ depth: 8, connections: 4, stallMs: 100 });
    expect(serviceWith({ depth: 2, connections: 1, stall: '2s' }).pipelining).toEqual({
      depth: 2,
      connections: 1,
      stallMs: 2_000,
    });
    expect(Object.isFrozen(serviceWith({ depth: 16 }).pipelining)).toBe(true);
  });

  it.each([
    [{}, 'services[0].pipelining.depth: is required: requests in flight per connection, 2 to 16'],
    [{ depth: 1 }, 'services[0].pipelining.depth: must be a whole number from 2 to 16 (got 1)'],
    [{ depth: 17 }, 'services[0].pipelining.depth: must be a whole number from 2 to 16 (got 17)'],
    [{ depth: 2.5 }, 'services[0].pipelining.depth: must be a whole number from 2 to 16 (got 2.5)'],
    [
      { depth: 4, connections: 0 },
      'services[0].pipelining.connections: must be a whole number from 1 to 64 (got 0)',
    ],
    [{ depth: 4, stall: '5ms' }, 'services[0].pipelining.stall: must be at least 10ms (got "5ms")'],
    [{ depth: 4, stall: '2m' }, 'services[0].pipelining.stall: must be at most 1m (got "2m")'],
    [
      { depth: 4, timeout: '1s' },
      'services[0].pipelining.timeout: unknown key (known keys: depth, connections, stall)',
    ],
    [true, 'services[0].pipelining: must be a mapping (got "true")'],
  ])('refuses %j', (pipelining, problem) => {
    expect(problemsOf(pipelining)).toEqual([problem]);
  });
});
