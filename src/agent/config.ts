// Agent configuration: a YAML/JSON file plus flags, checked in one pass that reports every problem
// by dotted path, then frozen. Attestor settings are checked by the attestor factories themselves.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseTimeoutMs } from '../spiffe/duration.js';
import { quote, SigilError } from '../spiffe/errors.js';
import { type HostPort, parseHostPort } from '../spiffe/host-port.js';
import { parseTrustDomain, type TrustDomain } from '../spiffe/id.js';
import { systemSocketPath } from '../spiffe/runtime-dir.js';
import { DEFAULT_MAX_JWT_SVID_BYTES, DEFAULT_MAX_JWT_SVIDS } from './manager/jwt-cache.js';
import { SVID_STORE_KINDS, type SvidStoreKind } from './manager/svid-store.js';
import { DEFAULT_WORKLOAD_API_LIMITS, type WorkloadApiLimits } from './workloadapi/connection-limits.js';

/** The sockets of an agent run by root or by systemd; `sigil-agent run` passes the ones for its user. */
export const DEFAULT_SOCKET_PATH = systemSocketPath('workloadApi');
export const DEFAULT_AGENT_ADMIN_SOCKET = systemSocketPath('agentAdmin');
export const DEFAULT_AGENT_DATA_DIR = '.sigil/agent';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export interface AgentConfig {
  readonly trustDomain: TrustDomain;
  /** HOST:PORT of each server, tried in order. */
  readonly serverAddresses: readonly string[];
  /** PEM or SPIFFE JSON bundle to trust the server with on first contact; null with insecureBootstrap. */
  readonly trustBundlePath: string | null;
  readonly insecureBootstrap: boolean;
  /** The one node attestor: its name and raw settings. */
  readonly nodeAttestor: { readonly name: string; readonly config: unknown };
  readonly workloadAttestors: Readonly<Record<string, unknown>>;
  readonly dataDir: string;
  readonly socketPath: string;
  readonly adminSocket: string;
  readonly logLevel: string;
  /** Upper bound on cached workload X.509-SVIDs. */
  readonly svidCacheMax: number;
  /**
   * Where the entries and workload X.509-SVIDs (with keys) are kept between runs: 'disk' (default), one
   * 0600 file in dataDir, so a restart while the server is down keeps serving; 'memory', nowhere.
   */
  readonly svidStore: SvidStoreKind;
  /** Upper bounds on cached JWT-SVIDs: count, and bytes of tokens and keys. */
  readonly jwtSvidCacheMax: number;
  readonly jwtSvidCacheMaxBytes: number;
  /** Connection, stream and idle limits of the Workload API socket. */
  readonly workloadApi: WorkloadApiLimits;
  /** A full re-sync is requested this often as a safety net for the push stream. */
  readonly reconcileIntervalMs: number;
  /** Where Prometheus scrapes GET /metrics over plain HTTP; null (the default) serves no metrics. */
  readonly metricsBind: HostPort | null;
}

export interface AgentFlags {
  config?: string;
  serverAddress?: string[];
  trustDomain?: string;
  trustBundlePath?: string;
  insecureBootstrap?: boolean;
  joinToken?: string;
  dataDir?: string;
  socketPath?: string;
  adminSocket?: string;
  logLevel?: string;
  metricsBind?: string;
}

const KNOWN_KEYS = [
  'trust_domain',
  'server_address',
  'trust_bundle_path',
  'insecure_bootstrap',
  'join_token',
  'node_attestor',
  'workload_attestors',
  'data_dir',
  'socket_path',
  'admin_socket',
  'log_level',
  'svid_cache_max',
  'svid_store',
  'jwt_svid_cache_max',
  'jwt_svid_cache_max_bytes',
  'workload_api',
  'reconcile_interval',
  'metrics_bind',
];
const WORKLOAD_API_KEYS = [
  'max_connections',
  'max_connections_per_uid',
  'max_streams_per_connection',
  'idle_timeout',
];

/** Defaults that depend on who runs the agent, computed by the entry point. */
export interface AgentDefaults {
  /** Used when neither the file nor a flag sets socket_path; DEFAULT_SOCKET_PATH otherwise. */
  readonly socketPath?: string;
  /** Used when neither the file nor a flag sets admin_socket; DEFAULT_AGENT_ADMIN_SOCKET otherwise. */
  readonly adminSocket?: string;
}

export function loadAgentConfig(
  flags: AgentFlags,
  cwd = process.cwd(),
  defaults: AgentDefaults = {},
): AgentConfig {
  const raw: Record<string, unknown> = flags.config ? readConfigFile(flags.config) : {};
  const where = flags.config ? `config ${flags.config}` : 'flags';
  if (flags.serverAddress?.length) raw.server_address = flags.serverAddress;
  if (flags.trustDomain !== undefined) raw.trust_domain = flags.trustDomain;
  if (flags.trustBundlePath !== undefined) raw.trust_bundle_path = flags.trustBundlePath;
  if (flags.insecureBootstrap) raw.insecure_bootstrap = true;
  if (flags.joinToken !== undefined) raw.join_token = flags.joinToken;
  if (flags.dataDir !== undefined) raw.data_dir = flags.dataDir;
  if (flags.socketPath !== undefined) raw.socket_path = flags.socketPath;
  if (flags.adminSocket !== undefined) raw.admin_socket = flags.adminSocket;
  if (flags.logLevel !== undefined) raw.log_level = flags.logLevel;
  if (flags.metricsBind !== undefined) raw.metrics_bind = flags.metricsBind;

  const problems: string[] = [];
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.includes(key))
      problems.push(`${key}: unknown key (known keys: ${KNOWN_KEYS.join(', ')})`);
  }
  let trustDomain: TrustDomain | null = null;
  if (raw.trust_domain === undefined)
    problems.push('trust_domain: is required (set it or pass --trust-domain)');
  else {
    try {
      trustDomain = parseTrustDomain(String(raw.trust_domain));
    } catch (err) {
      problems.push(`trust_domain: ${(err as Error).message.replace(/^[a-z_]+: /, '')}`);
    }
  }
  const addresses = (
    Array.isArray(raw.server_address)
      ? raw.server_address
      : raw.server_address === undefined
        ? []
        : [raw.server_address]
  ).map(String);
  if (addresses.length === 0)
    problems.push('server_address: is required (HOST:PORT of sigil-server; pass --server-address)');
  for (const address of addresses) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(address))
      problems.push(`server_address: ${quote(address)} is not HOST:PORT`);
  }
  const insecureBootstrap = raw.insecure_bootstrap === true;
  const trustBundlePath =
    raw.trust_bundle_path === undefined ? null : path.resolve(cwd, String(raw.trust_bundle_path));
  if (trustBundlePath && insecureBootstrap)
    problems.push('insecure_bootstrap: give either trust_bundle_path or insecure_bootstrap, not both');

  let nodeAttestor: AgentConfig['nodeAttestor'] | null = null;
  if (raw.join_token !== undefined && raw.node_attestor !== undefined) {
    problems.push('join_token: give either join_token or node_attestor, not both');
  } else if (raw.join_token !== undefined) {
    nodeAttestor = { name: 'join_token', config: { token: String(raw.join_token) } };
  } else if (raw.node_attestor !== undefined) {
    const attestors = raw.node_attestor;
    const names = typeof attestors === 'object' && attestors !== null ? Object.keys(attestors) : [];
    if (names.length !== 1)
      problems.push('node_attestor: must name exactly one attestor, e.g. {x509pop: {...}}');
    else nodeAttestor = { name: names[0]!, config: (attestors as Record<string, unknown>)[names[0]!] ?? {} };
  }

  // Every duration here arms a timer (the reconcile timer, the idle timer), hence the timeout cap.
  const timeout = (value: unknown, key: string, fallbackMs: number) => {
    if (value === undefined) return fallbackMs;
    try {
      return parseTimeoutMs(value as string | number, key);
    } catch (err) {
      problems.push((err as Error).message);
      return fallbackMs;
    }
  };
  const count = (value: unknown, key: string, fallback: number) => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      problems.push(`${key}: must be a positive whole number (got ${quote(value)})`);
      return fallback;
    }
    return value;
  };
  const reconcileIntervalMs = timeout(raw.reconcile_interval, 'reconcile_interval', 5 * 60_000);
  const svidCacheMax = count(raw.svid_cache_max, 'svid_cache_max', 10_000);
  const jwtSvidCacheMax = count(raw.jwt_svid_cache_max, 'jwt_svid_cache_max', DEFAULT_MAX_JWT_SVIDS);
  const jwtSvidCacheMaxBytes = count(
    raw.jwt_svid_cache_max_bytes,
    'jwt_svid_cache_max_bytes',
    DEFAULT_MAX_JWT_SVID_BYTES,
  );
  let api: Record<string, unknown> = {};
  if (typeof raw.workload_api === 'object' && raw.workload_api !== null && !Array.isArray(raw.workload_api)) {
    api = raw.workload_api as Record<string, unknown>;
  } else if (raw.workload_api !== undefined && raw.workload_api !== null) {
    problems.push(`workload_api: must be a mapping (got ${quote(raw.workload_api)})`);
  }
  for (const key of Object.keys(api)) {
    if (!WORKLOAD_API_KEYS.includes(key))
      problems.push(`workload_api.${key}: unknown key (known keys: ${WORKLOAD_API_KEYS.join(', ')})`);
  }
  const apiDefaults = DEFAULT_WORKLOAD_API_LIMITS;
  const workloadApi: WorkloadApiLimits = Object.freeze({
    maxConnections: count(api.max_connections, 'workload_api.max_connections', apiDefaults.maxConnections),
    maxConnectionsPerUid: count(
      api.max_connections_per_uid,
      'workload_api.max_connections_per_uid',
      apiDefaults.maxConnectionsPerUid,
    ),
    maxStreamsPerConnection: count(
      api.max_streams_per_connection,
      'workload_api.max_streams_per_connection',
      apiDefaults.maxStreamsPerConnection,
    ),
    idleTimeoutMs: timeout(api.idle_timeout, 'workload_api.idle_timeout', apiDefaults.idleTimeoutMs),
  });
  if (workloadApi.maxConnectionsPerUid > workloadApi.maxConnections) {
    problems.push(
      `workload_api.max_connections_per_uid: must not exceed max_connections (${workloadApi.maxConnections}), or one uid could leave no room for others (got ${workloadApi.maxConnectionsPerUid})`,
    );
  }
  const svidStore = (raw.svid_store ?? 'disk') as SvidStoreKind;
  if (!SVID_STORE_KINDS.includes(svidStore))
    problems.push(`svid_store: must be one of ${SVID_STORE_KINDS.join(', ')} (got ${quote(raw.svid_store)})`);
  const logLevel = String(raw.log_level ?? 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    problems.push(`log_level: must be one of ${LOG_LEVELS.join(', ')} (got ${quote(logLevel)})`);
  let metricsBind: HostPort | null = null;
  if (raw.metrics_bind !== undefined && raw.metrics_bind !== null) {
    try {
      metricsBind = parseHostPort(raw.metrics_bind);
    } catch (err) {
      problems.push(`metrics_bind: ${(err as Error).message}`);
    }
  }
  const workloadAttestors = (raw.workload_attestors ?? { unix: {} }) as Record<string, unknown>;
  if (typeof workloadAttestors !== 'object' || Array.isArray(workloadAttestors))
    problems.push('workload_attestors: must be a mapping of attestor name to settings');

  if (problems.length > 0) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `${where} has ${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  }
  return Object.freeze({
    trustDomain: trustDomain!,
    serverAddresses: Object.freeze(addresses),
    trustBundlePath,
    insecureBootstrap,
    nodeAttestor: nodeAttestor ?? { name: 'none', config: {} },
    workloadAttestors,
    dataDir: path.resolve(cwd, String(raw.data_dir ?? DEFAULT_AGENT_DATA_DIR)),
    socketPath: path.resolve(cwd, String(raw.socket_path ?? defaults.socketPath ?? DEFAULT_SOCKET_PATH)),
    adminSocket: path.resolve(
      cwd,
      String(raw.admin_socket ?? defaults.adminSocket ?? DEFAULT_AGENT_ADMIN_SOCKET),
    ),
    logLevel,
    svidCacheMax,
    svidStore,
    jwtSvidCacheMax,
    jwtSvidCacheMaxBytes,
    workloadApi,
    reconcileIntervalMs,
    metricsBind: metricsBind && Object.freeze(metricsBind),
  });
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SigilError('ERR_CONFIG_INVALID', `cannot read config ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error('the top level must be a mapping');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `config ${file} is not valid YAML/JSON: ${(err as Error).message}`,
    );
  }
}
