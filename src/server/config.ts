// Server configuration: a YAML/JSON file plus flags, checked in one pass that reports every problem by
// dotted path, then frozen. Unknown keys are errors, so a typo never silently falls back to a default.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createNodeAttestorServer, type JoinTokenReader } from '../attestors/node/index.js';
import { formatDuration, parseWholeSecondsMs } from '../spiffe/duration.js';
import { isSigilError, quote, SigilError } from '../spiffe/errors.js';
import { type HostPort, parseHostPort } from '../spiffe/host-port.js';
import { parseTrustDomain, type TrustDomain } from '../spiffe/id.js';
import { KEY_TYPES, type KeyType } from '../spiffe/keys.js';
import { systemSocketPath } from '../spiffe/runtime-dir.js';
import { type AdminApiLimits, DEFAULT_ADMIN_API_LIMITS } from './api/admin/limits.js';
import { svidTtlMs } from './api/admin/ttl.js';
import { type AgentApiLimits, DEFAULT_AGENT_API_LIMITS, MAX_CONCURRENT_STREAMS } from './api/agent/limits.js';
import { Checker, deepFreeze, type Raw } from './config-checker.js';
import type { DataStoreConfig } from './datastore/index.js';
import { checkNotifiersConfig, type NotifiersConfig } from './notifiers/index.js';

/** The admin socket of a server run by root or by systemd; `sigil-server run` passes the one for its user. */
export const DEFAULT_ADMIN_SOCKET = systemSocketPath('serverAdmin');
export const DEFAULT_DATA_DIR = '.sigil/server';
/**
 * 1 minute: agents renew an SVID at about half its life, so shorter lifetimes mostly add CA load
 * (every workload renewing every few seconds) while buying nothing: clocks may be 10 s apart (SVIDs
 * are backdated that much) and an entry change takes seconds to reach workloads anyway. Test and
 * demo setups that watch rotation happen lower it.
 */
export const DEFAULT_MIN_SVID_TTL_MS = 60_000;
/** What log_level and --log-level accept; `run --help` lists exactly these. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface UpstreamAuthorityConfig {
  readonly certFile: string;
  readonly keyFile: string;
  /** Roots to publish; defaults to the upstream certificate itself when it is self-signed. */
  readonly bundleFile: string | null;
}

export interface ServerConfig {
  readonly trustDomain: TrustDomain;
  /** Agent API listen address (HOST:PORT). */
  readonly bind: HostPort;
  readonly adminSocket: string;
  /** mTLS admin REST listen address; null = Unix socket only. */
  readonly adminBind: HostPort | null;
  /** Plain-HTTP GET /metrics for Prometheus; null (the default) = metrics only on the admin listeners. */
  readonly metricsBind: HostPort | null;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  readonly ca: {
    readonly keyType: KeyType;
    readonly ttlMs: number;
    readonly jwtKeyType: KeyType;
    readonly upstream: UpstreamAuthorityConfig | null;
    /** The least time a prepared authority is in the bundle before it signs. */
    readonly publishLeadMs: number;
  };
  readonly defaultX509SvidTtlMs: number;
  readonly defaultJwtSvidTtlMs: number;
  /** Lifetime of the SVIDs agents get at attestation and renewal. */
  readonly agentSvidTtlMs: number;
  /** Shortest x509/jwt SVID TTL an entry or a mint request may ask for. */
  readonly minSvidTtlMs: number;
  /** Timeouts, caps and rates of the agent API (api/agent/limits.ts has the defaults). */
  readonly agentApi: AgentApiLimits;
  /** Timeouts and connection cap of the admin listeners (api/admin/limits.ts has the defaults). */
  readonly adminApi: AdminApiLimits;
  /** Enabled node attestors by name, each with its raw config (checked by the attestor's factory). */
  readonly nodeAttestors: Readonly<Record<string, unknown>>;
  readonly datastore: DataStoreConfig;
  /** Where the server publishes its own trust bundle when it changes (none by default). */
  readonly notifiers: NotifiersConfig;
}

export type { HostPort };
export { parseHostPort };

/** Flags from `sigil-server run`; each overrides the file's key of the same meaning. */
export interface ServerFlags {
  trustDomain?: string;
  dataDir?: string;
  bind?: string;
  adminSocket?: string;
  adminBind?: string;
  metricsBind?: string;
  logLevel?: string;
}

/** Defaults that depend on who runs the server, computed by the entry point. */
export interface ServerDefaults {
  /** Used when neither the file nor a flag sets admin_socket; DEFAULT_ADMIN_SOCKET otherwise. */
  readonly adminSocket?: string;
  /** notifiers.k8s_bundle.api_server when unset: the in-cluster address from the environment. */
  readonly kubernetesApiServer?: string;
}

/** Reads and checks the config; throws ERR_CONFIG_INVALID listing every problem. */
export function loadServerConfig(
  file: string | null,
  flags: ServerFlags = {},
  cwd = process.cwd(),
  defaults: ServerDefaults = {},
): ServerConfig {
  const raw = file === null ? {} : readConfigFile(file);
  const where = file === null ? 'flags' : `config ${file}`;
  const merged: Raw = { ...raw };
  if (flags.trustDomain !== undefined) merged.trust_domain = flags.trustDomain;
  if (flags.dataDir !== undefined) merged.data_dir = flags.dataDir;
  if (flags.bind !== undefined) merged.bind = flags.bind;
  if (flags.adminSocket !== undefined) merged.admin_socket = flags.adminSocket;
  if (flags.adminBind !== undefined) merged.admin_bind = flags.adminBind;
  if (flags.metricsBind !== undefined) merged.metrics_bind = flags.metricsBind;
  if (flags.logLevel !== undefined) merged.log_level = flags.logLevel;
  return checkServerConfig(merged, where, cwd, defaults);
}

export function checkServerConfig(
  raw: Raw,
  where: string,
  cwd: string,
  defaults: ServerDefaults = {},
): ServerConfig {
  const problems: string[] = [];
  const check = new Checker(problems);
  check.unknownKeys(raw, '', [
    'trust_domain',
    'bind',
    'admin_socket',
    'admin_bind',
    'metrics_bind',
    'data_dir',
    'log_level',
    'ca',
    'default_x509_svid_ttl',
    'default_jwt_svid_ttl',
    'agent_svid_ttl',
    'min_svid_ttl',
    'agent_api',
    'admin_api',
    'node_attestors',
    'datastore',
    'notifiers',
  ]);

  const trustDomain = check.value('trust_domain', raw.trust_domain, (v) => parseTrustDomain(String(v)), {
    required: 'set trust_domain in the file or pass --trust-domain',
  });
  const bind = check.value('bind', raw.bind ?? '0.0.0.0:8081', parseHostPort);
  const metricsBind =
    raw.metrics_bind === undefined ? null : check.value('metrics_bind', raw.metrics_bind, parseHostPort);
  const adminBind =
    raw.admin_bind === undefined ? null : check.value('admin_bind', raw.admin_bind, parseHostPort);
  const dataDir = path.resolve(
    cwd,
    check.string('data_dir', raw.data_dir ?? DEFAULT_DATA_DIR) ?? DEFAULT_DATA_DIR,
  );
  const adminSocket = path.resolve(
    cwd,
    check.string('admin_socket', raw.admin_socket ?? defaults.adminSocket ?? DEFAULT_ADMIN_SOCKET) ?? '',
  );
  const logLevel = check.oneOf('log_level', raw.log_level ?? 'info', LOG_LEVELS) ?? 'info';

  const ca = check.object('ca', raw.ca ?? {});
  check.unknownKeys(ca, 'ca', ['key_type', 'ttl', 'jwt_key_type', 'upstream', 'publish_lead']);
  const keyType = check.oneOf('ca.key_type', ca.key_type ?? 'ec-p256', KEY_TYPES) ?? 'ec-p256';
  const jwtKeyType = check.oneOf('ca.jwt_key_type', ca.jwt_key_type ?? 'ec-p256', KEY_TYPES) ?? 'ec-p256';
  const caTtlMs = check.duration('ca.ttl', ca.ttl ?? '24h', parseWholeSecondsMs);
  const publishLeadMs = check.duration('ca.publish_lead', ca.publish_lead ?? '10m');
  let upstream: UpstreamAuthorityConfig | null = null;
  if (ca.upstream !== undefined) {
    const up = check.object('ca.upstream', ca.upstream);
    check.unknownKeys(up, 'ca.upstream', ['cert_file', 'key_file', 'bundle_file']);
    const certFile = check.string('ca.upstream.cert_file', up.cert_file, true);
    const keyFile = check.string('ca.upstream.key_file', up.key_file, true);
    const bundleFile =
      up.bundle_file === undefined ? null : check.string('ca.upstream.bundle_file', up.bundle_file);
    if (certFile && keyFile) {
      upstream = {
        certFile: path.resolve(cwd, certFile),
        keyFile: path.resolve(cwd, keyFile),
        bundleFile: bundleFile ? path.resolve(cwd, bundleFile) : null,
      };
    }
  }

  // Lifetimes end up in certificates and JWTs, which carry whole seconds, and the server's own
  // defaults are held to the floor entries and mint requests are (min_svid_ttl). When min_svid_ttl
  // is itself refused, the lifetimes are held to whole seconds only, so one mistake is one problem.
  const minSvidTtlMs =
    raw.min_svid_ttl === undefined
      ? DEFAULT_MIN_SVID_TTL_MS
      : check.duration('min_svid_ttl', raw.min_svid_ttl, parseWholeSecondsMs);
  const svidTtl = (key: string, fallback: string) =>
    check.duration(key, raw[key] ?? fallback, (v, field) =>
      minSvidTtlMs === null ? parseWholeSecondsMs(v, field) : svidTtlMs(v, field, minSvidTtlMs),
    );
  const x509TtlMs = svidTtl('default_x509_svid_ttl', '1h');
  const jwtTtlMs = svidTtl('default_jwt_svid_ttl', '5m');
  const agentSvidTtlMs = svidTtl('agent_svid_ttl', '1h');
  if (x509TtlMs !== null && caTtlMs !== null && x509TtlMs >= caTtlMs) {
    problems.push(
      `default_x509_svid_ttl: must be shorter than ca.ttl (${quote(raw.default_x509_svid_ttl ?? '1h')} >= ${quote(ca.ttl ?? '24h')}); an SVID cannot outlive its CA`,
    );
  }
  const agentApi = checkAgentApi(check, raw.agent_api);
  const adminApi = checkAdminApi(check, raw.admin_api);
  const nodeAttestors = check.object('node_attestors', raw.node_attestors ?? { join_token: {} });
  for (const [name, value] of Object.entries(nodeAttestors)) {
    if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
      problems.push(
        `node_attestors.${name}: must be a mapping of the attestor's settings (got ${quote(value)})`,
      );
    } else {
      checkNodeAttestor(problems, name, value ?? {});
    }
  }

  const datastore = check.object('datastore', raw.datastore ?? {});
  check.unknownKeys(datastore, 'datastore', ['kind', 'path', 'connection_string']);
  const kind =
    check.oneOf('datastore.kind', datastore.kind ?? 'sqlite', ['sqlite', 'postgres'] as const) ?? 'sqlite';
  let datastoreConfig: DataStoreConfig;
  if (kind === 'postgres') {
    const connectionString =
      check.string('datastore.connection_string', datastore.connection_string, true) ?? '';
    datastoreConfig = { kind, connectionString };
  } else {
    const file = check.string('datastore.path', datastore.path ?? path.join(dataDir, 'datastore.sqlite3'));
    datastoreConfig = { kind: 'sqlite', path: path.resolve(cwd, file ?? '') };
  }

  const notifiers = checkNotifiersConfig(check, raw.notifiers, defaults.kubernetesApiServer);

  if (problems.length > 0) {
    const noun = problems.length === 1 ? 'problem' : 'problems';
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `${where} has ${problems.length} ${noun}\n${problems.map((p) => `  ${p}`).join('\n')}`,
      { reason: 'config' },
    );
  }
  return deepFreeze({
    trustDomain: trustDomain!,
    bind: bind!,
    adminSocket,
    adminBind,
    metricsBind,
    dataDir,
    logLevel,
    ca: { keyType, ttlMs: caTtlMs!, jwtKeyType, upstream, publishLeadMs: publishLeadMs! },
    defaultX509SvidTtlMs: x509TtlMs!,
    defaultJwtSvidTtlMs: jwtTtlMs!,
    agentSvidTtlMs: agentSvidTtlMs!,
    minSvidTtlMs: minSvidTtlMs!,
    agentApi,
    adminApi,
    nodeAttestors: Object.fromEntries(Object.entries(nodeAttestors).map(([k, v]) => [k, v ?? {}])),
    datastore: datastoreConfig,
    notifiers,
  });
}

/**
 * Runs the attestor's own factory on its config, so that a bad attestor setting is reported with
 * the rest before the server writes anything (it used to surface after the CA keys were written).
 * The attestor built here is dropped: it never attests, so it gets a token reader that refuses.
 */
function checkNodeAttestor(problems: string[], name: string, value: unknown): void {
  try {
    createNodeAttestorServer(name, value, { joinTokens: CONFIG_CHECK_TOKENS });
  } catch (err) {
    if (!isSigilError(err)) throw err;
    // The factory lists several problems under a header line; ours take one line each.
    const lines = err.message.split('\n');
    problems.push(...(lines.length === 1 ? lines : lines.slice(1).map((line) => line.trim())));
  }
}

const CONFIG_CHECK_TOKENS: JoinTokenReader = {
  fetchJoinToken: () => {
    throw new SigilError('ERR_UNAVAILABLE', 'config check: no datastore');
  },
};

function checkAgentApi(check: Checker, input: unknown): AgentApiLimits {
  const d = DEFAULT_AGENT_API_LIMITS;
  const section = check.limitsSection('agent_api', input, [
    'handshake_timeout',
    'idle_timeout',
    'request_timeout',
    'max_connections',
    'max_connections_per_ip',
    'max_concurrent_streams',
    'attest_rate',
    'attest_burst',
    'sign_rate',
    'sign_burst',
    'sync_drain_timeout',
  ]);
  return {
    handshakeTimeoutMs: section.timeout('handshake_timeout', d.handshakeTimeoutMs),
    idleTimeoutMs: section.timeout('idle_timeout', d.idleTimeoutMs),
    requestTimeoutMs: section.timeout('request_timeout', d.requestTimeoutMs),
    maxConnections: section.count('max_connections', d.maxConnections),
    maxConnectionsPerIp: section.count('max_connections_per_ip', d.maxConnectionsPerIp),
    maxConcurrentStreams: section.count(
      'max_concurrent_streams',
      d.maxConcurrentStreams,
      MAX_CONCURRENT_STREAMS,
    ),
    attestRatePerSecond: section.count('attest_rate', d.attestRatePerSecond),
    attestBurst: section.count('attest_burst', d.attestBurst),
    signRatePerSecond: section.count('sign_rate', d.signRatePerSecond),
    signBurst: section.count('sign_burst', d.signBurst),
    syncDrainTimeoutMs: section.timeout('sync_drain_timeout', d.syncDrainTimeoutMs),
  };
}

function checkAdminApi(check: Checker, input: unknown): AdminApiLimits {
  const d = DEFAULT_ADMIN_API_LIMITS;
  const section = check.limitsSection('admin_api', input, [
    'handshake_timeout',
    'header_timeout',
    'request_timeout',
    'idle_timeout',
    'max_connections',
  ]);
  const limits = {
    handshakeTimeoutMs: section.timeout('handshake_timeout', d.handshakeTimeoutMs),
    headerTimeoutMs: section.timeout('header_timeout', d.headerTimeoutMs),
    requestTimeoutMs: section.timeout('request_timeout', d.requestTimeoutMs),
    idleTimeoutMs: section.timeout('idle_timeout', d.idleTimeoutMs),
    maxConnections: section.count('max_connections', d.maxConnections),
  };
  // node:http refuses a header timeout above the request timeout: the head is part of the request.
  if (limits.headerTimeoutMs > limits.requestTimeoutMs) {
    check.problems.push(
      `admin_api.header_timeout: must not exceed admin_api.request_timeout (${formatDuration(limits.headerTimeoutMs)} > ${formatDuration(limits.requestTimeoutMs)}): the head is part of the request`,
    );
  }
  return limits;
}

function readConfigFile(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SigilError('ERR_CONFIG_INVALID', `cannot read config ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let parsed: unknown;
  try {
    parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `config ${file} is not valid YAML/JSON: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SigilError('ERR_CONFIG_INVALID', `config ${file} must hold a mapping of keys at the top level`);
  }
  return parsed as Raw;
}
