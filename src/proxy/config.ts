// sigil-proxy configuration (YAML or JSON), checked in one pass that reports every problem by dotted
// path, then frozen. Listener addresses are HOST:PORT. `limits` (limits.ts) apply to every
// listener, the admin port included, and an inbound or outbound listener's own `limits` override
// them key by key; `path_normalization` (policy/normalize.ts) applies to every inbound listener.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { quote, SigilError } from '../spiffe/errors.js';
import { parseWorkloadSpiffeId } from '../spiffe/id.js';
import { systemSocketPath } from '../spiffe/runtime-dir.js';
import { type Address, ConfigReader } from './config-reader.js';
import { checkLimits, DEFAULT_LIMITS, type ListenerLimits } from './limits.js';
import { checkPathNormalization, type PathNormalization } from './policy/normalize.js';
import { checkRateLimit, type RateLimitConfig } from './ratelimit/index.js';
import { checkServices, legacyService, MAX_SERVER_IDS, type ServiceConfig } from './services/config.js';
import { type AccessLogConfig, checkAccessLog, checkTracing, type TracingConfig } from './tracing/config.js';

/** The system agent's socket: sidecars run as other users than the agent, so no per-user default. */
export const DEFAULT_WORKLOAD_API = `unix://${systemSocketPath('workloadApi')}`;
const PROTOCOLS = ['http', 'tcp', 'http2'] as const;
const MODES = ['strict', 'permissive'] as const;
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** The admin port's `listener` label in metrics and logs, so no listener may take the name. */
export const ADMIN_LISTENER = 'admin';

export type { Address };

export interface InboundConfig {
  readonly name: string;
  readonly listen: Address;
  readonly protocol: (typeof PROTOCOLS)[number];
  readonly app: Address;
  readonly mode: (typeof MODES)[number];
  readonly limits: ListenerLimits;
  /** Request (and opaque connection) rates per listener and per caller; null: none. */
  readonly rateLimit: RateLimitConfig | null;
}

export interface OutboundConfig {
  readonly name: string;
  readonly listen: Address;
  readonly protocol: (typeof PROTOCOLS)[number];
  /** The `services[].name` it sends to; a legacy `upstream` listener names its own one-endpoint service. */
  readonly service: string;
  readonly limits: ListenerLimits;
}

export interface ProxyConfig {
  /** `unix:///path` (or `tcp://IP:port`) of the Workload API. */
  readonly workloadApi: string;
  /**
   * The uid of an agent that runs as a user of its own: its socket is trusted like root's. Absent:
   * the Workload API socket must belong to root or to the proxy's own user.
   */
  readonly workloadApiOwner: number | undefined;
  /**
   * The one SVID to use among those the Workload API returns (a workload entitled to several);
   * null: the first, the workload's default identity. Normalized as parsed.
   */
  readonly spiffeId: string | null;
  readonly admin: Address;
  readonly logLevel: string;
  /** Absolute path of the policy file; null = no policy (every authenticated caller allowed). */
  readonly policyFile: string | null;
  /** Absolute path of the routes file (routes/); null = no routes (each listener sends to its service). */
  readonly routesFile: string | null;
  readonly inbound: readonly InboundConfig[];
  readonly outbound: readonly OutboundConfig[];
  /** The configured `services`, then one per legacy `upstream` listener (named after it). */
  readonly services: readonly ServiceConfig[];
  /** The top-level `limits`: the admin port's, and every listener's unless it overrides them. */
  readonly limits: ListenerLimits;
  /** How inbound listeners treat ambiguous request paths. */
  readonly pathNormalization: PathNormalization;
  /** Spans and their export (tracing/config.ts); null: off. */
  readonly tracing: TracingConfig | null;
  /** The per-request JSON log; null: off. */
  readonly accessLog: AccessLogConfig | null;
}

export function loadProxyConfig(
  file: string,
  env: Readonly<Record<string, string | undefined>> = {},
): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `cannot read proxy config ${file}: ${(err as Error).message}`,
      {
        reason: 'read',
        cause: err,
      },
    );
  }
  return parseProxyConfig(text, file, env);
}

/** The file's text (JSON if `file` ends in .json, else YAML) checked as by checkProxyConfig. */
export function parseProxyConfig(
  text: string,
  file: string,
  env: Readonly<Record<string, string | undefined>> = {},
): ProxyConfig {
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `cannot read proxy config ${file}: ${(err as Error).message}`,
      {
        reason: 'syntax',
        cause: err,
      },
    );
  }
  return checkProxyConfig(raw ?? {}, file, env);
}

export function checkProxyConfig(
  raw: unknown,
  file: string,
  env: Readonly<Record<string, string | undefined>> = {},
): ProxyConfig {
  const r = new ConfigReader();
  const { problems } = r;
  const name = (value: unknown, at: string, seen: Set<string>): string => {
    if (typeof value !== 'string' || !/^[a-z0-9][a-z0-9_-]*$/.test(value)) {
      r.report(at, `must be a name of lowercase letters, digits, "-" and "_" (got ${quote(value)})`);
      return `invalid-${seen.size}`;
    }
    if (value === ADMIN_LISTENER) {
      r.report(at, `"${ADMIN_LISTENER}" names the admin port in metrics and logs; choose another name`);
    } else if (seen.has(value)) r.report(at, `${quote(value)} is used by another listener`);
    seen.add(value);
    return value;
  };

  const top = r.mapping(raw, '', [
    'workload_api',
    'workload_api_owner',
    'spiffe_id',
    'admin',
    'log_level',
    'policy_file',
    'routes_file',
    'limits',
    'path_normalization',
    'inbound',
    'outbound',
    'services',
    'tracing',
    'access_log',
  ]);
  const limits = checkLimits(top.limits, 'limits', DEFAULT_LIMITS, problems);
  const pathNormalization = checkPathNormalization(top.path_normalization, 'path_normalization', problems);
  const names = new Set<string>();
  const inbound = r.list(top.inbound, 'inbound').map((item, i) => {
    const at = `inbound[${i}]`;
    const o = r.mapping(item, at, ['name', 'listen', 'protocol', 'app', 'mode', 'limits', 'rate_limit']);
    return {
      name: name(o.name, `${at}.name`, names),
      listen: r.address(o.listen, `${at}.listen`),
      protocol: r.oneOf(o.protocol, `${at}.protocol`, PROTOCOLS, 'http'),
      app: r.address(o.app, `${at}.app`),
      mode: r.oneOf(o.mode, `${at}.mode`, MODES, 'strict'),
      limits: checkLimits(o.limits, `${at}.limits`, limits, problems),
      rateLimit: checkRateLimit(o.rate_limit, `${at}.rate_limit`, r),
    };
  });
  const services = checkServices(top.services, r);
  const configured = new Map(services.map((s) => [s.name, s]));
  const outbound = r.list(top.outbound, 'outbound').map((item, i): OutboundConfig => {
    const at = `outbound[${i}]`;
    const o = r.mapping(item, at, [
      'name',
      'listen',
      'protocol',
      'service',
      'upstream',
      'server_ids',
      'limits',
    ]);
    const listener = {
      name: name(o.name, `${at}.name`, names),
      listen: r.address(o.listen, `${at}.listen`),
      protocol: r.oneOf(o.protocol, `${at}.protocol`, PROTOCOLS, 'http'),
      limits: checkLimits(o.limits, `${at}.limits`, limits, problems),
    };
    return { ...listener, service: outboundService(o, at, listener.name, configured, r, services) };
  });
  if (inbound.length + outbound.length === 0)
    problems.push('inbound, outbound: configure at least one listener');
  const workloadApi = String(top.workload_api ?? env.SPIFFE_ENDPOINT_SOCKET ?? DEFAULT_WORKLOAD_API);
  const workloadApiOwner = top.workload_api_owner;
  if (
    workloadApiOwner !== undefined &&
    !(Number.isSafeInteger(workloadApiOwner) && Number(workloadApiOwner) >= 0)
  ) {
    r.report('workload_api_owner', `must be a uid, a whole number (got ${quote(workloadApiOwner)})`);
  }
  const spiffeId = optionalWorkloadId(top.spiffe_id, 'spiffe_id', r);
  const logLevel = r.oneOf(top.log_level, 'log_level', LOG_LEVELS, 'info');
  const admin = r.address(top.admin ?? '127.0.0.1:15000', 'admin');
  const tracing = checkTracing(top.tracing, r);
  const accessLog = checkAccessLog(top.access_log, r, file);
  const policyFile =
    top.policy_file === undefined ? null : path.resolve(path.dirname(file), String(top.policy_file));
  const routesFile = filePath(top.routes_file, 'routes_file', file, r);

  if (problems.length > 0) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `config ${file} has ${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  }
  return Object.freeze({
    workloadApi,
    workloadApiOwner: workloadApiOwner as number | undefined,
    spiffeId,
    admin,
    logLevel,
    policyFile,
    routesFile,
    inbound: Object.freeze(inbound),
    outbound: Object.freeze(outbound),
    services: Object.freeze(services),
    limits,
    pathNormalization,
    tracing,
    accessLog,
  });
}

/** An optional workload SPIFFE ID (it names an SVID, so it has a path), normalized; null when absent. */
function optionalWorkloadId(value: unknown, at: string, r: ConfigReader): string | null {
  if (value === undefined) return null;
  try {
    return parseWorkloadSpiffeId(value as string, at).toString();
  } catch (err) {
    r.problems.push((err as Error).message);
    return null;
  }
}

/** A file path relative to the config file's directory, made absolute; null when absent. */
function filePath(value: unknown, at: string, configFile: string, r: ConfigReader): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value === '' || value.length > 4096 || value.includes('\0')) {
    r.report(at, `must be a file path (got ${quote(value)})`);
    return null;
  }
  return path.resolve(path.dirname(configFile), value);
}

/**
 * The service an outbound listener sends to: the one it names, or (legacy form) a one-endpoint
 * service named after the listener, appended to `services`.
 */
function outboundService(
  o: Record<string, unknown>,
  at: string,
  listenerName: string,
  configured: ReadonlyMap<string, ServiceConfig>,
  r: ConfigReader,
  services: ServiceConfig[],
): string {
  if ((o.service === undefined) === (o.upstream === undefined)) {
    r.report(at, 'set exactly one of service (a services[].name) or upstream (HOST:PORT, with server_ids)');
    return listenerName;
  }
  if (o.service !== undefined) {
    if (o.server_ids !== undefined)
      r.report(`${at}.server_ids`, 'set server_ids in the service, not the listener that names it');
    if (typeof o.service !== 'string' || !configured.has(o.service)) {
      const known = [...configured.keys()].join(', ') || 'none configured';
      r.report(`${at}.service`, `${quote(o.service)} is not a configured service (services: ${known})`);
      return listenerName;
    }
    return o.service;
  }
  const upstream = r.address(o.upstream, `${at}.upstream`);
  const serverIds = r.spiffeIds(
    o.server_ids,
    `${at}.server_ids`,
    MAX_SERVER_IDS,
    'the upstream sidecar may present',
  );
  if (configured.has(listenerName))
    r.report(
      `${at}.name`,
      `${quote(listenerName)} is also a services[].name; a listener with upstream makes a service of its own name, so rename one`,
    );
  else services.push(legacyService(listenerName, upstream, serverIds));
  return listenerName;
}
