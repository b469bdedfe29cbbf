import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import type { SigilError } from '../../spiffe/errors.js';
import type { DnsConfig, EndpointConfig } from './config.js';
import { type DnsEndpointsWatch, watchDnsEndpoints } from './dns.js';
import { TestDnsServer } from './dns-server.test-support.js';

const IDS = ['spiffe://example.org/orders'];
const NAME = 'orders.internal';

let server: TestDnsServer;
let resolver: Resolver;
let clock: ManualClock;
let watch: DnsEndpointsWatch | null;
let changes: string[][];
let errors: SigilError[];

beforeEach(async () => {
  server = await TestDnsServer.start();
  // One short try: a query the server drops must not stall a test for c-ares' default seconds.
  resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([server.address]);
  clock = new ManualClock();
  watch = null;
  changes = [];
  errors = [];
});

afterEach(async () => {
  watch?.close();
  await server.close();
});

const show = (endpoints: readonly EndpointConfig[]) =>
  endpoints.map((e) => `${e.address.host}:${e.address.port}`);

function start(dns: Partial<DnsConfig> = {}): DnsEndpointsWatch {
  watch = watchDnsEndpoints({ name: NAME, type: 'A', port: 8443, minTtlMs: 5_000, ...dns }, IDS, {
    clock,
    resolver,
    onChange: (endpoints) => changes.push(show(endpoints)),
    onError: (err) => errors.push(err),
  });
  return watch;
}

/** Waits in real time (DNS over loopback) for `done`; the manual clock does not move. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (done()) return;
    await sleep(5);
  }
  throw new Error('condition not reached');
}

/** How many times the server was asked `name TYPE`. */
const asked = (question = `${NAME} A`) => server.queries.filter((q) => q === question).length;

/**
 * Advances the clock, then waits for the resolution it may have started to finish: the watcher arms
 * its next timer only then, so a pending timer means it is idle again.
 */
async function advance(ms: number): Promise<void> {
  await clock.advance(ms);
  await until(() => clock.pendingTimers > 0);
}

const a = (address: string, ttl: number) => ({ address, ttl });

describe('watchDnsEndpoints: A and AAAA', () => {
  it('resolves at once into endpoints with the configured port and server IDs, sorted', async () => {
    server.set(NAME, { A: [a('10.0.0.2', 30), a('10.0.0.1', 30), a('10.0.0.2', 30)] });
    const w = start();
    await until(() => changes.length > 0);
    expect(changes).toEqual([['10.0.0.1:8443', '10.0.0.2:8443']]);
    expect(w.current()).toEqual([
      { address: { host: '10.0.0.1', port: 8443 }, serverIds: IDS },
      { address: { host: '10.0.0.2', port: 8443 }, serverIds: IDS },
    ]);
    expect(Object.isFrozen(w.current())).toBe(true);
  });

  it('re-resolves when the shortest TTL runs out, not before, and reports only a changed set', async () => {
    server.set(NAME, { A: [a('10.0.0.1', 30), a('10.0.0.2', 45)] });
    start();
    await until(() => changes.length > 0);
    await advance(29_999);
    expect(asked()).toBe(1);
    await advance(1);
    expect(asked()).toBe(2);
    expect(changes).toHaveLength(1); // same answer: no change reported

    server.set(NAME, { A: [a('10.0.0.3', 30)] });
    await advance(30_000);
    expect(asked()).toBe(3);
    expect(changes).toEqual([['10.0.0.1:8443', '10.0.0.2:8443'], ['10.0.0.3:8443']]);
    expect(errors).toEqual([]);
  });

  it('waits at least min_ttl after a short TTL, and at most 5 minutes after a long one', async () => {
    server.set(NAME, { A: [a('10.0.0.1', 1)] });
    start({ minTtlMs: 10_000 });
    await until(() => changes.length > 0);
    await advance(9_999);
    expect(asked()).toBe(1);
    await advance(1);
    expect(asked()).toBe(2);

    server.set(NAME, { A: [a('10.0.0.1', 86_400)] });
    await advance(10_000);
    expect(asked()).toBe(3);
    await advance(299_999);
    expect(asked()).toBe(3);
    await advance(1);
    expect(asked()).toBe(4);
  });

  it('resolves AAAA records into IPv6 endpoints', async () => {
    server.set(NAME, { AAAA: [a('fd00::2', 60), a('fd00::1', 60)], A: [a('10.0.0.1', 60)] });
    start({ type: 'AAAA', port: 443 });
    await until(() => changes.length > 0);
    expect(changes).toEqual([['fd00::1:443', 'fd00::2:443']]);
    expect(asked(`${NAME} AAAA`)).toBe(1);
    expect(asked()).toBe(0);
  });
});

describe('watchDnsEndpoints: SRV', () => {
  it('uses the lowest priority, resolves each target to its addresses, and re-resolves every min_ttl', async () => {
    server.set('_https._tcp.orders', {
      SRV: [
        { priority: 10, weight: 5, port: 8443, target: 'a.orders', ttl: 3600 },
        { priority: 10, weight: 5, port: 9443, target: 'b.orders', ttl: 3600 },
        { priority: 20, weight: 5, port: 8443, target: 'backup.orders', ttl: 3600 },
      ],
    });
    server.set('a.orders', { A: [a('10.0.0.1', 3600)], AAAA: [a('fd00::1', 3600)] });
    server.set('b.orders', { A: [a('10.0.0.2', 3600)] });
    server.set('backup.orders', { A: [a('10.0.0.9', 3600)] });
    start({ name: '_https._tcp.orders', type: 'SRV', port: null, minTtlMs: 7_000 });
    await until(() => changes.length > 0);
    expect(changes).toEqual([['10.0.0.1:8443', '10.0.0.2:9443', 'fd00::1:8443']]);
    expect(server.queries.some((q) => q.startsWith('backup.orders'))).toBe(false);

    server.set('b.orders', { A: [a('10.0.0.3', 3600)] });
    await advance(6_999);
    expect(asked('_https._tcp.orders SRV')).toBe(1);
    await advance(1);
    expect(asked('_https._tcp.orders SRV')).toBe(2);
    expect(changes[1]).toEqual(['10.0.0.1:8443', '10.0.0.3:9443', 'fd00::1:8443']);
  });

  it('leaves out a target that does not resolve, and counts "." alone as no service', async () => {
    server.set('_x._tcp.orders', {
      SRV: [
        { priority: 1, weight: 1, port: 1, target: 'gone.orders', ttl: 60 },
        { priority: 1, weight: 1, port: 2, target: 'a.orders', ttl: 60 },
      ],
    });
    server.set('a.orders', { A: [a('10.0.0.1', 60)] });
    start({ name: '_x._tcp.orders', type: 'SRV', port: null });
    await until(() => changes.length > 0);
    expect(changes).toEqual([['10.0.0.1:2']]);

    server.set('_x._tcp.orders', { SRV: [{ priority: 0, weight: 0, port: 0, target: '.', ttl: 60 }] });
    await advance(5_000);
    await until(() => errors.length > 0);
    expect(errors[0]!.message).toBe(
      'dns _x._tcp.orders SRV: no usable records; keeping the 1 endpoints resolved before',
    );
    expect(watch!.current().map((e) => e.address.host)).toEqual(['10.0.0.1']);
  });
});

describe('watchDnsEndpoints: failures and bounds', () => {
  it('keeps the last good set through a failure, retries with backoff from min_ttl, and recovers', async () => {
    server.set(NAME, { A: [a('10.0.0.1', 5)] });
    const w = start();
    await until(() => changes.length > 0);
    const good = w.current();

    server.fail(NAME, 'SERVFAIL');
    await advance(5_000);
    await until(() => errors.length > 0);
    expect(errors[0]).toMatchObject({ code: 'ERR_UNAVAILABLE', reason: 'dns' });
    expect(errors[0]!.message).toBe(
      'dns orders.internal A: resolution failed (ESERVFAIL); keeping the 1 endpoints resolved before',
    );
    expect(w.current()).toBe(good);

    // Retries at 5s, then 10s after that.
    await advance(4_999);
    expect(asked()).toBe(2);
    await advance(1);
    expect(asked()).toBe(3);
    await advance(9_999);
    expect(asked()).toBe(3);
    await advance(1);
    expect(asked()).toBe(4);
    expect(errors).toHaveLength(3);
    expect(w.current()).toBe(good);

    server.set(NAME, { A: [a('10.0.0.1', 5), a('10.0.0.2', 5)] });
    await advance(20_000);
    expect(changes).toEqual([['10.0.0.1:8443'], ['10.0.0.1:8443', '10.0.0.2:8443']]);
    // Back to the TTL once an answer is good.
    await advance(4_999);
    expect(asked()).toBe(5);
    await advance(1);
    expect(asked()).toBe(6);
  });

  it('keeps retrying a first resolution that fails, backing off from min_ttl to 30s', async () => {
    const w = start({ minTtlMs: 5_000 });
    await until(() => errors.length > 0);
    expect(errors[0]!.message).toBe('dns orders.internal A: no records (ENOTFOUND); no endpoints yet');
    expect(w.current()).toEqual([]);
    const times: number[] = [];
    const base = clock.nowMs();
    for (let step = 0; step < 70; step++) {
      const before = asked();
      await advance(1_000);
      if (asked() > before) times.push(clock.nowMs() - base);
    }
    // 5s, +10s, +20s, then +30s each.
    expect(times).toEqual([5_000, 15_000, 35_000, 65_000]);

    // A name that exists but has no A record is no better.
    server.set(NAME, { AAAA: [a('fd00::1', 5)] });
    await advance(30_000);
    expect(errors.at(-1)!.message).toBe('dns orders.internal A: no records (ENODATA); no endpoints yet');

    server.set(NAME, { A: [a('10.0.0.1', 5)] });
    await advance(30_000);
    expect(changes).toEqual([['10.0.0.1:8443']]);
  });

  it('keeps at most 256 endpoints of a larger answer (over TCP, as it does not fit UDP) and says so', async () => {
    server.set(NAME, { A: Array.from({ length: 300 }, (_, i) => a(`10.1.${i >> 8}.${i & 255}`, 60)) });
    const w = start();
    await until(() => changes.length > 0);
    expect(w.current()).toHaveLength(256);
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['ERR_RESOURCE_EXHAUSTED', 'dns orders.internal A: 300 endpoints answered; using the first 256'],
    ]);
  });

  it('stops after close: no callback, no timer', async () => {
    server.set(NAME, { A: [a('10.0.0.1', 5)] });
    const w = start();
    await until(() => changes.length > 0);
    w.close();
    server.set(NAME, { A: [a('10.0.0.2', 5)] });
    await clock.advance(60_000);
    await sleep(50);
    expect(asked()).toBe(1);
    expect(changes).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
  });
});
