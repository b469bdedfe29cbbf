// The agent config: socket path defaults, limits, and every problem reported by key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorkloadAttestor } from '../attestors/workload/index.js';
import { DEFAULT_AGENT_ADMIN_SOCKET, DEFAULT_SOCKET_PATH, loadAgentConfig } from './config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function load(yaml: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigil-agent-config-'));
  dirs.push(dir);
  const file = path.join(dir, 'agent.yaml');
  writeFileSync(file, `trust_domain: example.org\nserver_address: 127.0.0.1:8081\n${yaml}`);
  return () => loadAgentConfig({ config: file }, dir);
}

describe('agent config: Workload API and JWT cache limits', () => {
  it('loads deploy/agent.example.yaml, which lists every key with its default', () => {
    const example = fileURLToPath(new URL('../../deploy/agent.example.yaml', import.meta.url));
    const config = loadAgentConfig({ config: example });
    expect(config.workloadApi).toEqual(load('')().workloadApi);
    expect(config.jwtSvidCacheMaxBytes).toBe(load('')().jwtSvidCacheMaxBytes);
    expect(config.svidStore).toBe('disk');
    expect(() => createWorkloadAttestor('unix', config.workloadAttestors.unix)).not.toThrow();
  });

  it('defaults every limit', () => {
    const config = load('')();
    expect(config.workloadApi).toEqual({
      maxConnections: 4096,
      maxConnectionsPerUid: 256,
      maxStreamsPerConnection: 100,
      idleTimeoutMs: 300_000,
    });
    expect(config.jwtSvidCacheMax).toBe(10_000);
    expect(config.jwtSvidCacheMaxBytes).toBe(16 * 1024 * 1024);
  });

  it('reads snake_case keys into limits with units', () => {
    const config = load(
      [
        'workload_api:',
        '  max_connections: 500',
        '  max_connections_per_uid: 20',
        '  max_streams_per_connection: 8',
        '  idle_timeout: 90s',
        'jwt_svid_cache_max: 100',
        'jwt_svid_cache_max_bytes: 1048576',
      ].join('\n'),
    )();
    expect(config.workloadApi).toEqual({
      maxConnections: 500,
      maxConnectionsPerUid: 20,
      maxStreamsPerConnection: 8,
      idleTimeoutMs: 90_000,
    });
    expect(config.jwtSvidCacheMax).toBe(100);
    expect(config.jwtSvidCacheMaxBytes).toBe(1_048_576);
  });

  it('reports every problem at once, by dotted key, with the value found', () => {
    const problems = load(
      [
        'workload_api:',
        '  max_connections: 10',
        '  max_connections_per_uid: 11',
        '  max_streams_per_connection: 0',
        '  idle_timeout: forever',
        '  max_conections: 5',
        'jwt_svid_cache_max_bytes: "16MiB"',
      ].join('\n'),
    );
    let thrown: unknown;
    try {
      problems();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
    expect((thrown as Error).message.split('\n')).toEqual([
      expect.stringMatching(/has 5 problems$/),
      '  jwt_svid_cache_max_bytes: must be a positive whole number (got "16MiB")',
      '  workload_api.max_conections: unknown key (known keys: max_connections, max_connections_per_uid, max_streams_per_connection, idle_timeout)',
      '  workload_api.max_streams_per_connection: must be a positive whole number (got "0")',
      '  workload_api.idle_timeout: "forever" is not a duration (examples: 90s, 30m, 1h)',
      '  workload_api.max_connections_per_uid: must not exceed max_connections (10), or one uid could leave no room for others (got 11)',
    ]);
    expect(load('workload_api: 3')).toThrow(/workload_api: must be a mapping \(got "3"\)/);
  });

  it('caps timer durations at about 24 days, as the server does: Node fires a longer timer at once', () => {
    expect(load('workload_api:\n  idle_timeout: 24d')().workloadApi.idleTimeoutMs).toBe(24 * 86_400_000);
    let thrown: unknown;
    try {
      load('reconcile_interval: 30d\nworkload_api:\n  idle_timeout: 30d')();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
    expect((thrown as Error).message.split('\n')).toEqual([
      expect.stringMatching(/has 2 problems$/),
      '  reconcile_interval: must be at most 2147483647ms, about 24 days (got "30d")',
      '  workload_api.idle_timeout: must be at most 2147483647ms, about 24 days (got "30d")',
    ]);
  });

  it('checks svid_cache_max like the other counts', () => {
    expect(load('svid_cache_max: 500')().svidCacheMax).toBe(500);
    expect(load('')().svidCacheMax).toBe(10_000);
    expect(load('svid_cache_max: 0')).toThrow(/svid_cache_max: must be a positive whole number \(got "0"\)/);
  });

  it('keeps workload SVIDs on disk unless svid_store says memory', () => {
    expect(load('')().svidStore).toBe('disk');
    expect(load('svid_store: memory')().svidStore).toBe('memory');
    expect(load('svid_store: sqlite')).toThrow(/svid_store: must be one of disk, memory \(got "sqlite"\)/);
  });
});

const REQUIRED = { trustDomain: 'example.org', serverAddress: ['127.0.0.1:8081'] };
const FOR_USER = {
  socketPath: '/tmp/sigil-agent-1000/public/api.sock',
  adminSocket: '/tmp/sigil-agent-1000/private/admin.sock',
};

describe('loadAgentConfig socket paths', () => {
  it('default to the system paths when the caller passes no per-user defaults', () => {
    const config = loadAgentConfig(REQUIRED, '/srv');
    expect([config.socketPath, config.adminSocket]).toEqual([
      '/run/sigil-agent/public/api.sock',
      '/run/sigil-agent/private/admin.sock',
    ]);
    expect([DEFAULT_SOCKET_PATH, DEFAULT_AGENT_ADMIN_SOCKET]).toEqual([
      config.socketPath,
      config.adminSocket,
    ]);
  });

  it('take the flag, else the file, else the default passed for this user', () => {
    const fromDefaults = loadAgentConfig(REQUIRED, '/srv', FOR_USER);
    expect([fromDefaults.socketPath, fromDefaults.adminSocket]).toEqual([
      FOR_USER.socketPath,
      FOR_USER.adminSocket,
    ]);
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-agent-config-'));
    dirs.push(dir);
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(file, 'socket_path: /run/x/api.sock\nadmin_socket: /run/x/admin.sock\n');
    const fromFile = loadAgentConfig({ ...REQUIRED, config: file }, '/srv', FOR_USER);
    expect([fromFile.socketPath, fromFile.adminSocket]).toEqual(['/run/x/api.sock', '/run/x/admin.sock']);
    const fromFlag = loadAgentConfig({ ...REQUIRED, config: file, socketPath: 'api.sock' }, '/srv', FOR_USER);
    expect(fromFlag.socketPath).toBe('/srv/api.sock');
  });
});

describe('agent config: metrics_bind', () => {
  it('is off by default, and read from the file or --metrics-bind (the flag wins)', () => {
    expect(load('')().metricsBind).toBeNull();
    expect(load('metrics_bind: 0.0.0.0:9989\n')().metricsBind).toEqual({ host: '0.0.0.0', port: 9989 });
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-agent-config-'));
    dirs.push(dir);
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(
      file,
      'trust_domain: example.org\nserver_address: 127.0.0.1:8081\nmetrics_bind: 0.0.0.0:9989\n',
    );
    expect(loadAgentConfig({ config: file, metricsBind: '[::1]:19989' }, dir).metricsBind).toEqual({
      host: '::1',
      port: 19989,
    });
  });

  it('names the key and the bad value', () => {
    expect(load('metrics_bind: localhost\n')).toThrow(
      /metrics_bind: "localhost" is not HOST:PORT \(e\.g\. 127\.0\.0\.1:8081, \[::1\]:8081\)/,
    );
    expect(load('metrics_bind: 127.0.0.1:70000\n')).toThrow(
      /metrics_bind: "127\.0\.0\.1:70000" is not HOST:PORT/,
    );
  });
});
