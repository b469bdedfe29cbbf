import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isSigilError } from '../spiffe/errors.js';
import { DEFAULT_ADMIN_API_LIMITS } from './api/admin/limits.js';
import { DEFAULT_AGENT_API_LIMITS } from './api/agent/limits.js';
import { DEFAULT_ADMIN_SOCKET, loadServerConfig, parseHostPort } from './config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigil-config-'));
  dirs.push(dir);
  const target = path.join(dir, name);
  writeFileSync(target, text);
  return target;
}

function problemsOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected a config error');
}

describe('loadServerConfig', () => {
  it('fills documented defaults and resolves paths against the working directory', () => {
    const config = loadServerConfig(null, { trustDomain: 'example.org' }, '/srv');
    expect(config).toMatchObject({
      bind: { host: '0.0.0.0', port: 8081 },
      adminSocket: DEFAULT_ADMIN_SOCKET,
      adminBind: null,
      dataDir: '/srv/.sigil/server',
      logLevel: 'info',
      ca: { keyType: 'ec-p256', ttlMs: 86_400_000, jwtKeyType: 'ec-p256', upstream: null },
      defaultX509SvidTtlMs: 3_600_000,
      defaultJwtSvidTtlMs: 300_000,
      datastore: { kind: 'sqlite', path: '/srv/.sigil/server/datastore.sqlite3' },
    });
    expect(config.trustDomain.name).toBe('example.org');
    expect(Object.isFrozen(config.ca)).toBe(true);
  });

  it('takes the admin socket from the flag, else the file, else the default passed for this user', () => {
    const forUser = { adminSocket: '/tmp/sigil-server-1000/private/admin.sock' };
    const flags = { trustDomain: 'example.org' };
    expect(loadServerConfig(null, flags, '/srv', forUser).adminSocket).toBe(forUser.adminSocket);
    expect(loadServerConfig(null, { ...flags, adminSocket: 'a.sock' }, '/srv', forUser).adminSocket).toBe(
      '/srv/a.sock',
    );
    const yaml = file('s.yaml', 'trust_domain: a.org\nadmin_socket: /run/x/admin.sock\n');
    expect(loadServerConfig(yaml, {}, '/srv', forUser).adminSocket).toBe('/run/x/admin.sock');
  });

  it('loads deploy/server.example.yaml, whose limits and lifetimes are the defaults', () => {
    const example = loadServerConfig(
      fileURLToPath(new URL('../../deploy/server.example.yaml', import.meta.url)),
    );
    const defaults = loadServerConfig(null, { trustDomain: 'example.org' });
    for (const key of [
      'ca',
      'defaultX509SvidTtlMs',
      'defaultJwtSvidTtlMs',
      'agentSvidTtlMs',
      'minSvidTtlMs',
      'agentApi',
      'adminApi',
    ] as const) {
      expect(example[key], key).toEqual(defaults[key]);
    }
  });

  it('reads YAML and JSON, and flags override the file', () => {
    const yaml = file(
      's.yaml',
      'trust_domain: a.org\ndata_dir: /data\nca:\n  key_type: rsa-2048\n  ttl: 48h\ndefault_x509_svid_ttl: 2h\n',
    );
    const fromYaml = loadServerConfig(yaml, { dataDir: '/override', adminBind: '127.0.0.1:9000' });
    expect(fromYaml.trustDomain.name).toBe('a.org');
    expect(fromYaml.dataDir).toBe('/override');
    expect(fromYaml.adminBind).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(fromYaml.ca).toMatchObject({ keyType: 'rsa-2048', ttlMs: 172_800_000 });
    const json = file('s.json', JSON.stringify({ trust_domain: 'b.org', default_jwt_svid_ttl: 60 }));
    expect(loadServerConfig(json).defaultJwtSvidTtlMs).toBe(60_000);
  });

  it('reports every problem at once, by dotted path, with the value found', () => {
    const bad = file(
      's.yaml',
      [
        'trust_domain: Bad_Domain!',
        'bind: nowhere',
        'log_level: loud',
        'ca:',
        '  key_type: ec256',
        '  ttl: 1h',
        '  colour: red',
        'default_x509_svid_ttl: 2h',
        'datastore:',
        '  kind: mysql',
      ].join('\n'),
    );
    const message = problemsOf(() => loadServerConfig(bad));
    expect(message).toContain('has 7 problems');
    expect(message).toContain('trust_domain: ');
    expect(message).toContain('bind: "nowhere" is not HOST:PORT');
    expect(message).toContain(
      'log_level: must be one of trace, debug, info, warn, error, fatal, silent (got "loud")',
    );
    expect(message).toContain('ca.key_type: must be one of ec-p256, ec-p384, rsa-2048 (got "ec256")');
    expect(message).toContain('ca.colour: unknown key');
    expect(message).toContain('default_x509_svid_ttl: must be shorter than ca.ttl');
    expect(message).toContain('datastore.kind: must be one of sqlite, postgres (got "mysql")');
  });

  it('reads agent_api limits, defaulting each one, and refuses bad values by path', () => {
    expect(loadServerConfig(null, { trustDomain: 'example.org' }).agentApi).toEqual(DEFAULT_AGENT_API_LIMITS);
    const tuned = file(
      'a.yaml',
      'trust_domain: a.org\nagent_api:\n  handshake_timeout: 2s\n  idle_timeout: 30s\n  max_connections: 10\n  sign_rate: 5\n',
    );
    expect(loadServerConfig(tuned).agentApi).toEqual({
      ...DEFAULT_AGENT_API_LIMITS,
      handshakeTimeoutMs: 2_000,
      idleTimeoutMs: 30_000,
      maxConnections: 10,
      signRatePerSecond: 5,
    });
    const bad = file(
      'b.yaml',
      'trust_domain: a.org\nagent_api:\n  idle_timeout: soon\n  max_connections: 0\n  sign_burst: 2.5\n  max_conns: 3\n',
    );
    const message = problemsOf(() => loadServerConfig(bad));
    expect(message).toContain('agent_api.idle_timeout: "soon" is not a duration');
    expect(message).toContain('agent_api.max_connections: must be a whole number of at least 1 (got "0")');
    expect(message).toContain('agent_api.sign_burst: must be a whole number of at least 1 (got "2.5")');
    expect(message).toContain('agent_api.max_conns: unknown key');
  });

  it('reads the attestation rate and stream cap of agent_api, and refuses timers Node cannot arm', () => {
    const tuned = file(
      'a.yaml',
      'trust_domain: a.org\nagent_api:\n  attest_rate: 2\n  attest_burst: 9\n  max_concurrent_streams: 7\n',
    );
    expect(loadServerConfig(tuned).agentApi).toMatchObject({
      attestRatePerSecond: 2,
      attestBurst: 9,
      maxConcurrentStreams: 7,
    });
    const bad = file(
      'b.yaml',
      'trust_domain: a.org\nagent_api:\n  idle_timeout: 30d\n  attest_rate: 0.5\n  max_concurrent_streams: 4294967296\n',
    );
    const message = problemsOf(() => loadServerConfig(bad));
    expect(message).toContain('has 3 problems');
    expect(message).toContain(
      'agent_api.idle_timeout: must be at most 2147483647ms, about 24 days (got "30d")',
    );
    expect(message).toContain('agent_api.attest_rate: must be a whole number of at least 1 (got "0.5")');
    expect(message).toContain(
      'agent_api.max_concurrent_streams: must be a whole number from 1 to 2147483647 (got "4294967296")',
    );
  });

  it('reads admin_api limits, defaulting each one, and refuses bad values by path', () => {
    expect(loadServerConfig(null, { trustDomain: 'example.org' }).adminApi).toEqual(DEFAULT_ADMIN_API_LIMITS);
    const tuned = file(
      'a.yaml',
      'trust_domain: a.org\nadmin_api:\n  handshake_timeout: 2s\n  header_timeout: 500ms\n  request_timeout: 5s\n  idle_timeout: 1m\n  max_connections: 8\n',
    );
    expect(loadServerConfig(tuned).adminApi).toEqual({
      handshakeTimeoutMs: 2_000,
      headerTimeoutMs: 500,
      requestTimeoutMs: 5_000,
      idleTimeoutMs: 60_000,
      maxConnections: 8,
    });
    const bad = file(
      'b.yaml',
      'trust_domain: a.org\nadmin_api:\n  header_timeout: 1m\n  request_timeout: 10s\n  max_connections: -1\n  idle: 5s\n',
    );
    const message = problemsOf(() => loadServerConfig(bad));
    expect(message).toContain('has 3 problems');
    expect(message).toContain(
      'admin_api.header_timeout: must not exceed admin_api.request_timeout (1m > 10s): the head is part of the request',
    );
    expect(message).toContain('admin_api.max_connections: must be a whole number of at least 1 (got "-1")');
    expect(message).toContain(
      'admin_api.idle: unknown key (known keys: handshake_timeout, header_timeout, request_timeout, idle_timeout, max_connections)',
    );
  });

  it('holds every lifetime in the config to whole seconds, and SVID lifetimes to min_svid_ttl', () => {
    const bad = file(
      't.yaml',
      [
        'trust_domain: a.org',
        'ca:',
        '  ttl: 24h500ms',
        'default_x509_svid_ttl: 30s',
        'default_jwt_svid_ttl: 90.5',
        'agent_svid_ttl: 8s',
      ].join('\n'),
    );
    const message = problemsOf(() => loadServerConfig(bad));
    expect(message).toContain('has 4 problems');
    expect(message).toContain('ca.ttl: "24h500ms" must be a whole number of seconds');
    expect(message).toContain(
      `default_x509_svid_ttl: "30s" is shorter than the server's minimum SVID lifetime of 1m (min_svid_ttl)`,
    );
    expect(message).toContain('default_jwt_svid_ttl: "90.5" must be a whole number of seconds');
    expect(message).toContain(
      `agent_svid_ttl: "8s" is shorter than the server's minimum SVID lifetime of 1m (min_svid_ttl)`,
    );

    const lowered = file(
      'l.yaml',
      'trust_domain: a.org\nmin_svid_ttl: 5s\ndefault_x509_svid_ttl: 8s\ndefault_jwt_svid_ttl: 5s\nagent_svid_ttl: 30s\n',
    );
    expect(loadServerConfig(lowered)).toMatchObject({
      minSvidTtlMs: 5_000,
      defaultX509SvidTtlMs: 8_000,
      defaultJwtSvidTtlMs: 5_000,
      agentSvidTtlMs: 30_000,
    });
    expect(
      problemsOf(() =>
        loadServerConfig(file('e.yaml', 'trust_domain: a.org\nmin_svid_ttl: 5s\ndefault_jwt_svid_ttl: 4s\n')),
      ),
    ).toContain(`default_jwt_svid_ttl: "4s" is shorter than the server's minimum SVID lifetime of 5s`);
    // A bad min_svid_ttl is one problem, not one more per lifetime it would have floored.
    const badMin = problemsOf(() =>
      loadServerConfig(file('m.yaml', 'trust_domain: a.org\nmin_svid_ttl: 0.5\ndefault_jwt_svid_ttl: 8s\n')),
    );
    expect(badMin).toContain('has 1 problem\n');
    expect(badMin).toContain('min_svid_ttl: "0.5" must be a whole number of seconds');
  });

  it('reads min_svid_ttl in whole seconds, 1 minute by default', () => {
    expect(loadServerConfig(null, { trustDomain: 'a.org' }).minSvidTtlMs).toBe(60_000);
    expect(loadServerConfig(file('m.yaml', 'trust_domain: a.org\nmin_svid_ttl: 5s\n')).minSvidTtlMs).toBe(
      5_000,
    );
    expect(
      problemsOf(() => loadServerConfig(file('n.yaml', 'trust_domain: a.org\nmin_svid_ttl: 1500ms\n'))),
    ).toContain('min_svid_ttl: "1500ms" must be a whole number of seconds');
  });

  it('requires a trust domain and says how to give one', () => {
    expect(problemsOf(() => loadServerConfig(null, {}))).toContain(
      'trust_domain: is required (set trust_domain in the file or pass --trust-domain)',
    );
  });

  it('requires both files of an upstream authority', () => {
    const bad = file('s.yaml', 'trust_domain: a.org\nca:\n  upstream:\n    cert_file: /x.pem\n');
    expect(problemsOf(() => loadServerConfig(bad))).toContain('ca.upstream.key_file: is required');
  });

  it("checks each node attestor's settings with its own factory, listed with the other problems", () => {
    const bad = file(
      's.yaml',
      [
        'trust_domain: a.org',
        'log_level: loud',
        'node_attestors:',
        '  join_token: { ttl: 1h }',
        '  x509pop: { ca_bundle_path: /nonexistent/ca.pem, colour: blue }',
        '  tpm: {}',
        '',
      ].join('\n'),
    );
    const message = problemsOf(() => loadServerConfig(bad));
    expect(message).toMatch(/ has 5 problems\n/);
    expect(message).toContain('\n  log_level: must be one of');
    expect(message).toContain(
      '\n  node_attestors.join_token.ttl: unknown key (this attestor takes no settings)',
    );
    expect(message).toContain('\n  node_attestors.x509pop.colour: unknown key (known keys: ca_bundle_path)');
    expect(message).toContain(
      '\n  node_attestors.x509pop.ca_bundle_path: cannot read /nonexistent/ca.pem: ENOENT',
    );
    expect(message).toContain(
      '\n  node_attestors.tpm: unknown node attestor "tpm" (valid: join_token, x509pop, k8s_sat)',
    );
  });

  it('names unreadable and unparsable files', () => {
    expect(problemsOf(() => loadServerConfig('/nonexistent/server.yaml'))).toContain(
      'cannot read config /nonexistent/server.yaml',
    );
    expect(problemsOf(() => loadServerConfig(file('s.yaml', 'a: [1, 2')))).toContain(
      'is not valid YAML/JSON',
    );
    expect(problemsOf(() => loadServerConfig(file('s.yaml', '- a\n- b\n')))).toContain('must hold a mapping');
  });
});

describe('metrics_bind', () => {
  it('is off by default, and read from the file or --metrics-bind (the flag wins)', () => {
    expect(loadServerConfig(null, { trustDomain: 'example.org' }).metricsBind).toBeNull();
    const yaml = file('s.yaml', 'trust_domain: a.org\nmetrics_bind: 0.0.0.0:9988\n');
    expect(loadServerConfig(yaml).metricsBind).toEqual({ host: '0.0.0.0', port: 9988 });
    expect(loadServerConfig(yaml, { metricsBind: '127.0.0.1:19988' }).metricsBind).toEqual({
      host: '127.0.0.1',
      port: 19988,
    });
  });

  it('names the key and the bad value', () => {
    const yaml = file('s.yaml', 'trust_domain: a.org\nmetrics_bind: 9988\n');
    expect(problemsOf(() => loadServerConfig(yaml))).toContain('metrics_bind: "9988" is not HOST:PORT');
  });
});

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:8081', { host: '127.0.0.1', port: 8081 }],
    [':9000', { host: '0.0.0.0', port: 9000 }],
    ['[::1]:443', { host: '::1', port: 443 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ])('parses %s', (input, expected) => {
    expect(parseHostPort(input)).toEqual(expected);
  });

  it.each(['8081', 'host:', 'host:99999', '::1:80', 'a b:80'])('refuses %s', (input) => {
    expect(() => parseHostPort(input)).toThrow(/is not HOST:PORT/);
  });
});
