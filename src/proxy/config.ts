// sigil-proxy configuration (YAML or JSON), checked in one pass that reports every problem by dotted
// path, then frozen. Listener addresses are HOST:PORT. `limits` (limits.ts) apply to every
// listener, the admin port included, and an inbound or outbound listener's own `limits` override
// them key by key; `path_normalization` (policy/normalize.ts) applies to every inbound listener.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { quote, SigilError } from '../spiffe/errors.js';
import { parseSpiffeId } from '../spiffe/id.js';
import { systemSocketPath } from '../spiffe/runtime-dir.js';
import { checkLimits, DEFAULT_LIMITS, type ListenerLimits } from './limits.js';
import { checkPathNormalization, type PathNormalization } from './policy/normalize.js';

/** The system agent's socket: sidecars run as other users than the agent, so no per-user default. */
export const DEFAULT_WORKLOAD_API = `unix://${systemSocketPath('workloadApi')}`;
const PROTOCOLS = ['http', 'tcp', 'http2'] as const;
const MODES = ['strict', 'permissive'] as const;
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** The admin port's `listener` label in metrics and logs, so no listener may take the name. */
export const ADMIN_LISTENER = 'admin';

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface InboundConfig {
  readonly name: string;
  readonly listen: Address;
  readonly protocol: (typeof PROTOCOLS)[number];
  readonly app: Address;
  readonly mode: (typeof MODES)[number];
  readonly limits: ListenerLimits;
}

export interface OutboundConfig {
  readonly name: string;
  readonly listen: Address;
  readonly protocol: (typeof PROTOCOLS)[number];
  readonly upstream: Address;
  readonly serverIds: readonly string[];
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
  readonly admin: Address;
  readonly logLevel: string;
  /** Absolute path of the policy file; null = no policy (every authenticated caller allowed). */
  readonly policyFile: string | null;
  readonly inbound: readonly InboundConfig[];
  readonly outbound: readonly OutboundConfig[];
  /** The top-level `limits`: the admin port's, and every listener's unless it overrides them. */
  readonly limits: ListenerLimits;
  /** How inbound listeners treat ambiguous request paths. */
  readonly pathNormalization: PathNormalization;
}

export function loadProxyConfig(
  file: string,
  env: Readonly<Record<string, string | undefined>> = {},
): ProxyConfig {
  let raw: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new SigilError('ERR_CONFIG_INVALID', `cannot read proxy config ${file}: ${(err as Error).message}`);
  }
  return checkProxyConfig(raw ?? {}, file, env);
}

export function checkProxyConfig(
  raw: unknown,
  file: string,
  env: Readonly<Record<string, string | undefined>> = {},
): ProxyConfig {
  const problems: string[] = [];
  const obj = (value: unknown, at: string, known: readonly string[]): Record<string, unknown> => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${at}: must be a mapping (got ${quote(value)})`);
      return {};
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key))
        problems.push(`${at ? `${at}.` : ''}${key}: unknown key (known keys: ${known.join(', ')})`);
    }
    return value as Record<string, unknown>;
  };
  const address = (value: unknown, at: string): Address => {
    const match = typeof value === 'string' ? /^(\[[0-9a-fA-F:.]+\]|[^:\s]*):(\d{1,5})$/.exec(value) : null;
    if (!match || Number(match[2]) > 65535) {
      problems.push(`${at}: ${quote(value)} is not HOST:PORT`);
      return { host: '127.0.0.1', port: 0 };
    }
    return { host: (match[1] || '0.0.0.0').replace(/^\[|\]$/g, ''), port: Number(match[2]) };
  };
  const oneOf = <T extends string>(value: unknown, at: string, allowed: readonly T[], fallback: T): T => {
    if (value === undefined) return fallback;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    problems.push(`${at}: must be one of ${allowed.join(', ')} (got ${quote(value)})`);
    return fallback;
  };
  const list = (value: unknown, at: string): unknown[] => {
    if (value === undefined) return [];
    if (Array.isArray(value)) return value;
    problems.push(`${at}: must be a list`);
    return [];
  };
  const name = (value: unknown, at: string, seen: Set<string>): string => {
    if (typeof value !== 'string' || !/^[a-z0-9][a-z0-9_-]*$/.test(value)) {
      problems.push(`${at}: must be a name of lowercase letters, digits, "-" and "_" (got ${quote(value)})`);
      return `invalid-${seen.size}`;
    }
    if (value === ADMIN_LISTENER) {
      problems.push(
        `${at}: "${ADMIN_LISTENER}" names the admin port in metrics and logs; choose another name`,
      );
    } else if (seen.has(value)) problems.push(`${at}: ${quote(value)} is used by another listener`);
    seen.add(value);
    return value;
  };

  const top = obj(raw, '', [
    'workload_api',
    'workload_api_owner',
    'admin',
    'log_level',
    'policy_file',
    'limits',
    'path_normalization',
    'inbound',
    'outbound',
  ]);
  const limits = checkLimits(top.limits, 'limits', DEFAULT_LIMITS, problems);
  const pathNormalization = checkPathNormalization(top.path_normalization, 'path_normalization', problems);
  const names = new Set<string>();
  const inbound = list(top.inbound, 'inbound').map((item, i) => {
    const at = `inbound[${i}]`;
    const o = obj(item, at, ['name', 'listen', 'protocol', 'app', 'mode', 'limits']);
    return {
      name: name(o.name, `${at}.name`, names),
      listen: address(o.listen, `${at}.listen`),
      protocol: oneOf(o.protocol, `${at}.protocol`, PROTOCOLS, 'http'),
      app: address(o.app, `${at}.app`),
      mode: oneOf(o.mode, `${at}.mode`, MODES, 'strict'),
      limits: checkLimits(o.limits, `${at}.limits`, limits, problems),
    };
  });
  const outbound = list(top.outbound, 'outbound').map((item, i) => {
    const at = `outbound[${i}]`;
    const o = obj(item, at, ['name', 'listen', 'protocol', 'upstream', 'server_ids', 'limits']);
    const serverIds = list(o.server_ids, `${at}.server_ids`).map((id, j) => {
      try {
        return parseSpiffeId(String(id), `${at}.server_ids[${j}]`).toString();
      } catch (err) {
        problems.push((err as Error).message);
        return '';
      }
    });
    if (serverIds.length === 0)
      problems.push(`${at}.server_ids: name at least one SPIFFE ID the upstream sidecar may present`);
    return {
      name: name(o.name, `${at}.name`, names),
      listen: address(o.listen, `${at}.listen`),
      protocol: oneOf(o.protocol, `${at}.protocol`, PROTOCOLS, 'http'),
      upstream: address(o.upstream, `${at}.upstream`),
      serverIds,
      limits: checkLimits(o.limits, `${at}.limits`, limits, problems),
    };
  });
  if (inbound.length + outbound.length === 0)
    problems.push('inbound, outbound: configure at least one listener');
  const workloadApi = String(top.workload_api ?? env.SPIFFE_ENDPOINT_SOCKET ?? DEFAULT_WORKLOAD_API);
  const workloadApiOwner = top.workload_api_owner;
  if (
    workloadApiOwner !== undefined &&
    !(Number.isSafeInteger(workloadApiOwner) && Number(workloadApiOwner) >= 0)
  ) {
    problems.push(`workload_api_owner: must be a uid, a whole number (got ${quote(workloadApiOwner)})`);
  }
  const logLevel = oneOf(top.log_level, 'log_level', LOG_LEVELS, 'info');
  const admin = address(top.admin ?? '127.0.0.1:15000', 'admin');
  const policyFile =
    top.policy_file === undefined ? null : path.resolve(path.dirname(file), String(top.policy_file));

  if (problems.length > 0) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `config ${file} has ${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  }
  return Object.freeze({
    workloadApi,
    workloadApiOwner: workloadApiOwner as number | undefined,
    admin,
    logLevel,
    policyFile,
    inbound,
    outbound,
    limits,
    pathNormalization,
  });
}
