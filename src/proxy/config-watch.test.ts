import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../spiffe/clock.js';
import { isSigilError, type SigilError } from '../spiffe/errors.js';
import { checkProxyConfig, type ProxyConfig } from './config.js';
import { diffProxyConfig, type ProxyConfigWatch, watchProxyConfig } from './config-watch.js';
import { untilPolled } from './file-watch.test-support.js';

const POLL_MS = 1_000;

/** A config whose one service has the given endpoints and max_attempts. */
function configText(endpoints: string[], maxAttempts: unknown = 3): string {
  return [
    'outbound:',
    '  - { name: orders, listen: "127.0.0.1:7001", service: orders }',
    'services:',
    '  - name: orders',
    '    server_ids: [spiffe://example.org/orders]',
    `    endpoints: [${endpoints.map((a) => `{ address: "${a}" }`).join(', ')}]`,
    `    retries: { max_attempts: ${JSON.stringify(maxAttempts)} }`,
    '',
  ].join('\n');
}

let dir: string;
let file: string;
let clock: ManualClock;
let watch: ProxyConfigWatch | null;
let changes: ProxyConfig[];
let errors: SigilError[];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-proxy-config-'));
  file = path.join(dir, 'proxy.yaml');
  clock = new ManualClock();
  watch = null;
  changes = [];
  errors = [];
});

afterEach(() => {
  watch?.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(env: Record<string, string> = {}): ProxyConfigWatch {
  watch = watchProxyConfig(file, {
    clock,
    env,
    onChange: (config) => changes.push(config),
    onError: (err) => errors.push(err),
    pollIntervalMs: POLL_MS,
    debounceMs: 50,
  });
  return watch;
}

const until = (done: () => boolean) => untilPolled(clock, POLL_MS, done);

const addresses = (config: ProxyConfig) =>
  config.services[0]!.endpoints!.map((e) => `${e.address.host}:${e.address.port}`);

describe('watchProxyConfig', () => {
  it('loads the file at start, with the env it is given', () => {
    writeFileSync(file, configText(['10.0.0.1:8443']));
    const w = start({ SPIFFE_ENDPOINT_SOCKET: 'unix:///tmp/agent.sock' });
    expect(addresses(w.current())).toEqual(['10.0.0.1:8443']);
    expect(w.current().workloadApi).toBe('unix:///tmp/agent.sock');
  });

  it('throws ERR_CONFIG_INVALID on a broken or missing initial file', () => {
    writeFileSync(file, configText(['10.0.0.1:8443'], 0));
    expect(() => start()).toThrow(
      /services\[0\]\.retries\.max_attempts: must be a whole number from 1 to 10 \(got 0\)/,
    );
    unlinkSync(file);
    expect(() => start()).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', reason: 'read' }));
  });

  it('applies a changed service, also when saved by rename', async () => {
    writeFileSync(file, configText(['10.0.0.1:8443']));
    const w = start();
    writeFileSync(file, configText(['10.0.0.1:8443', '10.0.0.2:8443']));
    await until(() => changes.length > 0);
    expect(addresses(changes[0]!)).toEqual(['10.0.0.1:8443', '10.0.0.2:8443']);
    expect(w.current()).toBe(changes[0]);

    const temp = path.join(dir, '.proxy.yaml.tmp');
    writeFileSync(temp, configText(['10.0.0.3:8443']));
    renameSync(temp, file);
    await until(() => changes.length > 1);
    expect(addresses(w.current())).toEqual(['10.0.0.3:8443']);
  });

  it('keeps the previous config on a broken change, says what is wrong by dotted path, and recovers', async () => {
    writeFileSync(file, configText(['10.0.0.1:8443']));
    const w = start();
    const before = w.current();
    writeFileSync(file, configText(['10.0.0.1:8443', 'nowhere'], 11));
    await until(() => errors.length > 0);
    expect(isSigilError(errors[0], 'ERR_CONFIG_INVALID')).toBe(true);
    expect(errors[0]!.message).toBe(
      [
        `config ${file} has 2 problems`,
        '  services[0].endpoints[1].address: "nowhere" is not HOST:PORT',
        '  services[0].retries.max_attempts: must be a whole number from 1 to 10 (got 11)',
      ].join('\n'),
    );
    expect(w.current()).toBe(before);

    // Unparseable YAML is refused the same way.
    writeFileSync(file, 'services: [\n');
    await until(() => errors.length > 1);
    expect(errors[1]!.message).toMatch(/^cannot read proxy config .*proxy\.yaml: /);
    expect(w.current()).toBe(before);
    expect(changes).toEqual([]);

    writeFileSync(file, configText(['10.0.0.9:8443']));
    await until(() => changes.length > 0);
    expect(addresses(w.current())).toEqual(['10.0.0.9:8443']);
  });

  it('reports a deleted file once, keeps the config, and stops after close', async () => {
    writeFileSync(file, configText(['10.0.0.1:8443']));
    const w = start();
    unlinkSync(file);
    await until(() => errors.length > 0);
    expect(errors[0]!.message).toBe(`proxy config ${file} could not be read (ENOENT)`);
    await clock.advance(POLL_MS * 3);
    await sleep(20);
    expect(errors).toHaveLength(1);
    expect(addresses(w.current())).toEqual(['10.0.0.1:8443']);

    w.close();
    writeFileSync(file, configText(['10.0.0.2:8443']));
    await clock.advance(POLL_MS * 3);
    await sleep(50);
    expect(changes).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('diffProxyConfig', () => {
  const base = {
    admin: '127.0.0.1:15000',
    inbound: [{ name: 'api', listen: '127.0.0.1:15001', app: '127.0.0.1:8080' }],
    outbound: [
      { name: 'orders', listen: '127.0.0.1:7001', service: 'orders' },
      {
        name: 'legacy',
        listen: '127.0.0.1:7002',
        upstream: '10.0.0.5:1',
        server_ids: ['spiffe://example.org/l'],
      },
    ],
    services: [
      { name: 'orders', server_ids: ['spiffe://example.org/orders'], endpoints: [{ address: '10.0.0.1:1' }] },
      {
        name: 'orders-v2',
        server_ids: ['spiffe://example.org/orders'],
        endpoints: [{ address: '10.0.0.2:1' }],
      },
    ],
  };
  const check = (raw: unknown) => checkProxyConfig(raw, 'proxy.yaml');

  it('finds nothing between equal configs', () => {
    expect(diffProxyConfig(check(base), check(structuredClone(base)))).toEqual({
      services: [],
      rerouted: [],
      needsRestart: [],
    });
  });

  it('applies services, a listener pointed at another service, and a legacy upstream live', () => {
    const next = structuredClone(base);
    next.services[1]!.endpoints.push({ address: '10.0.0.3:1' });
    next.services.push({
      name: 'new',
      server_ids: ['spiffe://example.org/n'],
      endpoints: [{ address: 'n:1' }],
    });
    next.outbound[0]!.service = 'orders-v2';
    next.outbound[1]!.upstream = '10.0.0.6:1';
    expect(diffProxyConfig(check(base), check(next))).toEqual({
      services: ['orders-v2', 'legacy', 'new'],
      rerouted: ['orders'],
      needsRestart: [],
    });
  });

  it('names what needs a restart: listeners added, removed or changed, and top-level settings', () => {
    const next = structuredClone(base);
    next.admin = '127.0.0.1:15999';
    (next as Record<string, unknown>).routes_file = 'routes.yaml';
    next.inbound[0]!.listen = '127.0.0.1:15002';
    next.outbound[0]!.listen = '127.0.0.1:7009';
    next.outbound.pop();
    expect(diffProxyConfig(check(base), check(next))).toEqual({
      services: ['legacy'],
      rerouted: [],
      needsRestart: ['admin', 'routesFile', 'inbound.api', 'outbound.orders', 'outbound.legacy'],
    });
  });
});
