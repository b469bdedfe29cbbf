// Keeps the proxy config current without a restart, through file-watch.ts. A file that fails to read
// or check is reported (every problem by dotted path) and the previous config stays in force. What a
// change means (services apply at once; a changed listen address needs a restart) is the caller's.
import { type ProxyConfig, parseProxyConfig } from './config.js';
import { type FileWatch, type FileWatchCallbacks, readFailure, watchFile } from './file-watch.js';

/** onError gets ERR_CONFIG_INVALID when a changed file cannot be read or checked. */
export interface WatchProxyConfigOptions extends FileWatchCallbacks<ProxyConfig> {
  /** As for loadProxyConfig: SPIFFE_ENDPOINT_SOCKET is the default workload_api. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** current() is the config from the last file content that passed every check. */
export type ProxyConfigWatch = FileWatch<ProxyConfig>;

/** Loads `file` (throws ERR_CONFIG_INVALID if it is unreadable or broken) and watches it. */
export function watchProxyConfig(file: string, options: WatchProxyConfigOptions): ProxyConfigWatch {
  return watchFile(file, {
    ...options,
    parse: (text) => parseProxyConfig(text, file, options.env ?? {}),
    readError: (err) => readFailure('ERR_CONFIG_INVALID', `proxy config ${file}`, err),
  });
}

export interface ProxyConfigChange {
  /** Names of services added, removed or changed: these apply without a restart. */
  readonly services: readonly string[];
  /** Outbound listeners (by name) that now name another service: also live. */
  readonly rerouted: readonly string[];
  /** Dotted paths of changes that take effect only after a restart (listeners, admin, identity…). */
  readonly needsRestart: readonly string[];
}

/** Two checked config values alike: they are plain data in a fixed key order, so their JSON compares. */
export function sameConfig(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * What a reload changes, as the spec splits it: services and a listener's service (or, in the legacy
 * form, its upstream and server_ids, which are its service) apply live; the rest needs a restart.
 */
export function diffProxyConfig(prev: ProxyConfig, next: ProxyConfig): ProxyConfigChange {
  const byName = <T extends { name: string }>(items: readonly T[]) => new Map(items.map((i) => [i.name, i]));
  const changedNames = <T extends { name: string }>(a: readonly T[], b: readonly T[]) => {
    const before = byName(a);
    const after = byName(b);
    const names = new Set([...before.keys(), ...after.keys()]);
    return [...names].filter((n) => !sameConfig(before.get(n), after.get(n)));
  };
  const needsRestart: string[] = [];
  for (const key of [
    'workloadApi',
    'workloadApiOwner',
    'spiffeId',
    'admin',
    'logLevel',
    'policyFile',
    'routesFile',
    'limits',
    'pathNormalization',
    'tracing',
    'accessLog',
  ] as const)
    if (!sameConfig(prev[key], next[key])) needsRestart.push(key);
  for (const name of changedNames(prev.inbound, next.inbound)) needsRestart.push(`inbound.${name}`);
  const before = byName(prev.outbound);
  const rerouted: string[] = [];
  for (const name of changedNames(prev.outbound, next.outbound)) {
    const a = before.get(name);
    const b = next.outbound.find((o) => o.name === name);
    if (a && b && sameConfig({ ...a, service: '' }, { ...b, service: '' })) rerouted.push(name);
    else needsRestart.push(`outbound.${name}`);
  }
  return { services: changedNames(prev.services, next.services), rerouted, needsRestart };
}
