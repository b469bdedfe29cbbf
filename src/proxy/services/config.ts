// The `services:` section of the proxy config: what an outbound listener sends to (static endpoints
// or a DNS name) and how (balancing, timeouts, retries, limits, outlier detection). This file only
// checks and defaults values; the outbound stack enforces them. Every key has a bound, so a typo
// like `max_attempts: 100` or `window: 10d` is a config error rather than a surprise in production.
import { MAX_TIMER_DELAY_MS } from '../../spiffe/clock.js';
import { quote } from '../../spiffe/errors.js';
import type { Address, ConfigReader, DurationBounds } from '../config-reader.js';
import { showValue } from '../policy/match.js';
import { checkPipelining, type PipeliningConfig } from './pipelining-config.js';

export type { Address, PipeliningConfig };

export interface EndpointConfig {
  readonly address: Address;
  /** The endpoint's own `server_ids`, else the service's: never empty. */
  readonly serverIds: readonly string[];
}

export interface DnsConfig {
  readonly name: string;
  readonly type: 'A' | 'AAAA' | 'SRV';
  /** The port to connect to for A/AAAA; null for SRV, whose records carry the port. */
  readonly port: number | null;
  /** Re-resolve no sooner than this, whatever the record TTL says; SRV re-resolves at this period. */
  readonly minTtlMs: number;
}

export interface ServiceConfig {
  readonly name: string;
  /** IDs every endpoint may present unless it names its own; empty only if every static endpoint does. */
  readonly serverIds: readonly string[];
  /** Static endpoints, or null when `dns` is set. */
  readonly endpoints: readonly EndpointConfig[] | null;
  readonly dns: DnsConfig | null;
  readonly loadBalancer: {
    readonly policy: 'p2c-ewma' | 'round-robin';
    readonly slowStartMs: number;
    readonly ewmaDecayMs: number;
  };
  /** 0 = none. */
  readonly timeouts: { readonly connectMs: number; readonly requestMs: number; readonly tryMs: number };
  readonly retries: {
    /** Tries in all: 1 = no retries. */
    readonly maxAttempts: number;
    readonly onStatuses: readonly number[];
    /** True: the service says every call is safe to repeat, so any method is retried. */
    readonly nonIdempotent: boolean;
    readonly backoff: { readonly baseMs: number; readonly maxMs: number };
    readonly budget: { readonly ratio: number; readonly minPerSecond: number; readonly windowMs: number };
  };
  readonly limits: {
    readonly maxConnections: number;
    readonly maxPending: number;
    readonly maxConcurrent: number;
  };
  readonly outlierDetection: {
    /** 0 = off. */
    readonly consecutiveFailures: number;
    /** 0 = off. */
    readonly failureRate: number;
    readonly minRequests: number;
    readonly windowMs: number;
    readonly baseEjectionMs: number;
    readonly maxEjectionMs: number;
    readonly maxEjectedShare: number;
  };
  /** HTTP/1.1 pipelining to the service's sidecars (pipelining-config.ts); null: off. */
  readonly pipelining: PipeliningConfig | null;
}

/** The resilience settings of a service: everything but its name and endpoints. */
export type ServiceSettings = Pick<
  ServiceConfig,
  'loadBalancer' | 'timeouts' | 'retries' | 'limits' | 'outlierDetection' | 'pipelining'
>;

export const DEFAULT_SERVICE_SETTINGS: ServiceSettings = deepFreeze({
  loadBalancer: {
    /** Linkerd's balancer: power of two choices over peak-EWMA latency, which routes around a slow endpoint. */
    policy: 'p2c-ewma',
    /** Envoy's slow start is off by default; 10s lets a new endpoint warm caches and JIT before full share. */
    slowStartMs: 10_000,
    /** Linkerd's default EWMA decay. */
    ewmaDecayMs: 10_000,
  },
  timeouts: {
    /** What the outbound listener allowed before services: TCP connect, mTLS handshake and ID check. */
    connectMs: 10_000,
    /** Envoy's default route timeout. */
    requestMs: 15_000,
    /** Envoy's per_try_timeout default: none, the request timeout bounds every try. */
    tryMs: 0,
  },
  retries: {
    /** Istio's default of 2 retries, 3 tries in all. */
    maxAttempts: 3,
    /** Envoy's `gateway-error` retry class: the failures a different endpoint may not have. */
    onStatuses: [502, 503, 504],
    /** RFC 9110 §9.2.2: only idempotent methods may be repeated without the service saying so. */
    nonIdempotent: false,
    /** Envoy's retry back-off: 25ms base, 10x base at most. */
    backoff: { baseMs: 25, maxMs: 250 },
    /** Linkerd's default retry budget: retries up to 20% of requests, plus 10/s, over 10s. */
    budget: { ratio: 0.2, minPerSecond: 10, windowMs: 10_000 },
  },
  /** Envoy's default circuit-breaker thresholds (max_connections, max_pending_requests, max_requests). */
  limits: { maxConnections: 1_024, maxPending: 1_024, maxConcurrent: 1_024 },
  outlierDetection: {
    /** Envoy's consecutive_5xx default. */
    consecutiveFailures: 5,
    /** Envoy's failure-percentage detection needs 85% and is off by default; a sidecar's few endpoints
     *  call for acting at 50%, once min_requests (Envoy's failure_percentage_request_volume, 50) makes
     *  the share meaningful: 30% random failures exceed 50% of 50 tries with a chance of 0.1%. */
    failureRate: 0.5,
    minRequests: 50,
    /** Three of Envoy's 10s sweep intervals, so a short burst does not count as a failure rate. */
    windowMs: 30_000,
    /** Envoy's base_ejection_time and max_ejection_time defaults. */
    baseEjectionMs: 30_000,
    maxEjectionMs: 300_000,
    /** Envoy ejects at most 10%; with a sidecar's 2-5 endpoints that is one, so say half. */
    maxEjectedShare: 0.5,
  },
  /** Off: an upstream must be known to answer pipelined requests in order (a Sigil sidecar does). */
  pipelining: null,
});

/** Bounds the config, the DNS answer and the balancer's work per request. */
export const MAX_ENDPOINTS = 256;
export const MAX_SERVICES = 256;
/** More allowed IDs than this is a misconfiguration, and each connect scans the list. */
export const MAX_SERVER_IDS = 64;
/** Counters that far exceed any sidecar's need: a bound that catches typos (`max_pending: 10000000`). */
const MAX_COUNT = 1_000_000;
/** The DNS TTL cap (dns.ts) is also the highest min_ttl: 5 minutes. */
export const MAX_DNS_TTL_MS = 300_000;

const NAME = /^[a-z0-9][a-z0-9_-]*$/;
/** RFC 1035 names, with `_` for SRV labels (`_http._tcp.orders`) and an optional final dot. */
const DNS_NAME =
  /^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$/;
const DNS_TYPES = ['A', 'AAAA', 'SRV'] as const;
const POLICIES = ['p2c-ewma', 'round-robin'] as const;
const SERVICE_KEYS = [
  'name',
  'server_ids',
  'endpoints',
  'dns',
  'load_balancer',
  'timeouts',
  'retries',
  'limits',
  'outlier_detection',
  'pipelining',
];
const TIMEOUT: DurationBounds = { minMs: 1, maxMs: MAX_TIMER_DELAY_MS, zeroIsNone: true };
const SECOND = 1_000;
const HOUR = 3_600_000;

/** The service a legacy listener (`upstream` + `server_ids`) stands for: one endpoint, default settings. */
export function legacyService(name: string, upstream: Address, serverIds: readonly string[]): ServiceConfig {
  return deepFreeze({
    name,
    serverIds,
    endpoints: [{ address: upstream, serverIds }],
    dns: null,
    ...DEFAULT_SERVICE_SETTINGS,
  });
}

/** Checks the `services:` list (pushing problems onto `r`); each service comes back deep-frozen. */
export function checkServices(raw: unknown, r: ConfigReader): ServiceConfig[] {
  const seen = new Set<string>();
  return r.list(raw, 'services', MAX_SERVICES).map((item, i) => {
    const at = `services[${i}]`;
    const o = r.mapping(item, at, SERVICE_KEYS);
    let name = `invalid-${i}`;
    if (typeof o.name !== 'string' || !NAME.test(o.name))
      r.report(
        `${at}.name`,
        `must be a name of lowercase letters, digits, "-" and "_" (got ${quote(o.name)})`,
      );
    else if (seen.has(o.name)) r.report(`${at}.name`, `"${o.name}" is used by another service`);
    else name = o.name;
    seen.add(name);
    const serverIds =
      o.server_ids === undefined
        ? Object.freeze([])
        : r.spiffeIds(o.server_ids, `${at}.server_ids`, MAX_SERVER_IDS, 'its endpoints may present');
    if ((o.endpoints === undefined) === (o.dns === undefined))
      r.report(at, 'set exactly one of endpoints (static addresses) or dns');
    const endpoints = o.endpoints === undefined ? null : checkEndpoints(o.endpoints, at, serverIds, r);
    const dns = o.dns === undefined ? null : checkDns(o.dns, `${at}.dns`, r);
    if (dns !== null && serverIds.length === 0)
      r.report(`${at}.server_ids`, 'name at least one SPIFFE ID the endpoints dns finds may present');
    return deepFreeze({ name, serverIds, endpoints, dns, ...checkSettings(o, at, r) });
  });
}

function checkEndpoints(
  raw: unknown,
  at: string,
  serviceIds: readonly string[],
  r: ConfigReader,
): EndpointConfig[] {
  const items = r.list(raw, `${at}.endpoints`, MAX_ENDPOINTS);
  if (Array.isArray(raw) && items.length === 0)
    r.report(`${at}.endpoints`, 'list at least one endpoint, or use dns');
  const addresses = new Set<string>();
  return items.map((item, j) => {
    const eat = `${at}.endpoints[${j}]`;
    const o = r.mapping(item, eat, ['address', 'server_ids']);
    const address = r.dialAddress(o.address, `${eat}.address`);
    const key = `${address.host}:${address.port}`;
    if (addresses.has(key)) r.report(`${eat}.address`, `"${o.address}" is listed twice`);
    addresses.add(key);
    let serverIds = serviceIds;
    if (o.server_ids !== undefined)
      serverIds = r.spiffeIds(o.server_ids, `${eat}.server_ids`, MAX_SERVER_IDS, 'the endpoint may present');
    else if (serviceIds.length === 0)
      r.report(
        `${eat}.server_ids`,
        `name at least one SPIFFE ID the endpoint may present (here or in ${at}.server_ids)`,
      );
    return { address, serverIds };
  });
}

function checkDns(raw: unknown, at: string, r: ConfigReader): DnsConfig {
  const o = r.mapping(raw, at, ['name', 'type', 'port', 'min_ttl']);
  const name = typeof o.name === 'string' && DNS_NAME.test(o.name) ? o.name : '';
  if (name === '') r.report(`${at}.name`, `must be a DNS name (got ${quote(o.name)})`);
  const type = r.oneOf(o.type, `${at}.type`, DNS_TYPES, 'A');
  let port: number | null = null;
  if (type === 'SRV') {
    if (o.port !== undefined) r.report(`${at}.port`, 'SRV records carry the port; remove it');
  } else if (o.port === undefined) r.report(`${at}.port`, `is required for type ${type}`);
  else port = r.count(o.port, `${at}.port`, 1, 65_535, 0);
  const minTtlMs = r.duration(o.min_ttl, `${at}.min_ttl`, { minMs: SECOND, maxMs: MAX_DNS_TTL_MS }, 5_000);
  return { name, type, port, minTtlMs };
}

/** Every settings section over DEFAULT_SERVICE_SETTINGS, then the checks that span two keys. */
function checkSettings(o: Record<string, unknown>, at: string, r: ConfigReader): ServiceSettings {
  const d = DEFAULT_SERVICE_SETTINGS;
  const lbAt = `${at}.load_balancer`;
  const lb = r.optionalMapping(o.load_balancer, lbAt, ['policy', 'slow_start', 'ewma_decay']);
  const loadBalancer = {
    policy: r.oneOf(lb.policy, `${lbAt}.policy`, POLICIES, d.loadBalancer.policy),
    slowStartMs: r.duration(
      lb.slow_start,
      `${lbAt}.slow_start`,
      { minMs: 1, maxMs: HOUR, zeroIsNone: true },
      d.loadBalancer.slowStartMs,
    ),
    ewmaDecayMs: r.duration(
      lb.ewma_decay,
      `${lbAt}.ewma_decay`,
      { minMs: 100, maxMs: HOUR },
      d.loadBalancer.ewmaDecayMs,
    ),
  };

  const tAt = `${at}.timeouts`;
  const t = r.optionalMapping(o.timeouts, tAt, ['connect', 'request', 'try']);
  const timeouts = {
    connectMs: r.duration(t.connect, `${tAt}.connect`, TIMEOUT, d.timeouts.connectMs),
    requestMs: r.duration(t.request, `${tAt}.request`, TIMEOUT, d.timeouts.requestMs),
    tryMs: r.duration(t.try, `${tAt}.try`, TIMEOUT, d.timeouts.tryMs),
  };
  if (timeouts.tryMs > 0 && timeouts.requestMs > 0 && timeouts.tryMs > timeouts.requestMs)
    r.report(
      `${tAt}.try`,
      `must not exceed timeouts.request (${timeouts.tryMs}ms > ${timeouts.requestMs}ms): the request timeout bounds every try`,
    );

  const rAt = `${at}.retries`;
  const rt = r.optionalMapping(o.retries, rAt, [
    'max_attempts',
    'on_statuses',
    'non_idempotent',
    'backoff',
    'budget',
  ]);
  const bAt = `${rAt}.backoff`;
  const b = r.optionalMapping(rt.backoff, bAt, ['base', 'max']);
  const backoff = {
    baseMs: r.duration(b.base, `${bAt}.base`, { minMs: 1, maxMs: 60 * SECOND }, d.retries.backoff.baseMs),
    maxMs: r.duration(b.max, `${bAt}.max`, { minMs: 1, maxMs: 300 * SECOND }, d.retries.backoff.maxMs),
  };
  if (backoff.maxMs < backoff.baseMs)
    r.report(`${bAt}.max`, `must not be less than base (${backoff.maxMs}ms < ${backoff.baseMs}ms)`);
  const gAt = `${rAt}.budget`;
  const g = r.optionalMapping(rt.budget, gAt, ['ratio', 'min_per_second', 'window']);
  const retries = {
    maxAttempts: r.count(rt.max_attempts, `${rAt}.max_attempts`, 1, 10, d.retries.maxAttempts),
    onStatuses: checkStatuses(rt.on_statuses, `${rAt}.on_statuses`, r) ?? d.retries.onStatuses,
    nonIdempotent: r.boolean(rt.non_idempotent, `${rAt}.non_idempotent`, d.retries.nonIdempotent),
    backoff,
    budget: {
      ratio: r.ratio(g.ratio, `${gAt}.ratio`, d.retries.budget.ratio),
      minPerSecond: r.count(
        g.min_per_second,
        `${gAt}.min_per_second`,
        0,
        MAX_COUNT,
        d.retries.budget.minPerSecond,
      ),
      // Linkerd's retry budget accepts a TTL from 1s to 60s: past a minute it stops tracking a storm.
      windowMs: r.duration(
        g.window,
        `${gAt}.window`,
        { minMs: SECOND, maxMs: 60 * SECOND },
        d.retries.budget.windowMs,
      ),
    },
  };

  const lAt = `${at}.limits`;
  const l = r.optionalMapping(o.limits, lAt, ['max_connections', 'max_pending', 'max_concurrent']);
  const limits = {
    maxConnections: r.count(
      l.max_connections,
      `${lAt}.max_connections`,
      1,
      MAX_COUNT,
      d.limits.maxConnections,
    ),
    maxPending: r.count(l.max_pending, `${lAt}.max_pending`, 1, MAX_COUNT, d.limits.maxPending),
    maxConcurrent: r.count(l.max_concurrent, `${lAt}.max_concurrent`, 1, MAX_COUNT, d.limits.maxConcurrent),
  };

  const oAt = `${at}.outlier_detection`;
  const od = r.optionalMapping(o.outlier_detection, oAt, [
    'consecutive_failures',
    'failure_rate',
    'min_requests',
    'window',
    'base_ejection',
    'max_ejection',
    'max_ejected_share',
  ]);
  const dod = d.outlierDetection;
  const outlierDetection = {
    consecutiveFailures: r.count(
      od.consecutive_failures,
      `${oAt}.consecutive_failures`,
      0,
      1_000,
      dod.consecutiveFailures,
    ),
    failureRate: r.ratio(od.failure_rate, `${oAt}.failure_rate`, dod.failureRate),
    minRequests: r.count(od.min_requests, `${oAt}.min_requests`, 1, MAX_COUNT, dod.minRequests),
    windowMs: r.duration(od.window, `${oAt}.window`, { minMs: SECOND, maxMs: HOUR }, dod.windowMs),
    baseEjectionMs: r.duration(
      od.base_ejection,
      `${oAt}.base_ejection`,
      { minMs: SECOND, maxMs: HOUR },
      dod.baseEjectionMs,
    ),
    maxEjectionMs: r.duration(
      od.max_ejection,
      `${oAt}.max_ejection`,
      { minMs: SECOND, maxMs: 24 * HOUR },
      dod.maxEjectionMs,
    ),
    maxEjectedShare: r.ratio(od.max_ejected_share, `${oAt}.max_ejected_share`, dod.maxEjectedShare),
  };
  if (outlierDetection.maxEjectionMs < outlierDetection.baseEjectionMs)
    r.report(
      `${oAt}.max_ejection`,
      `must not be less than base_ejection (${outlierDetection.maxEjectionMs}ms < ${outlierDetection.baseEjectionMs}ms)`,
    );
  const pipelining = checkPipelining(o.pipelining, `${at}.pipelining`, r);
  return { loadBalancer, timeouts, retries, limits, outlierDetection, pipelining };
}

/** 1 to 64 distinct HTTP status codes; undefined when absent. */
function checkStatuses(raw: unknown, at: string, r: ConfigReader): readonly number[] | undefined {
  if (raw === undefined) return undefined;
  const items = r.list(raw, at, 64);
  if (Array.isArray(raw) && items.length === 0)
    r.report(at, 'list at least one status, or set max_attempts: 1 for no retries');
  const statuses: number[] = [];
  items.forEach((s, j) => {
    if (!Number.isInteger(s) || (s as number) < 100 || (s as number) > 599)
      r.report(`${at}[${j}]`, `must be an HTTP status from 100 to 599 (got ${showValue(s)})`);
    else if (statuses.includes(s as number)) r.report(`${at}[${j}]`, `${s} is listed twice`);
    else statuses.push(s as number);
  });
  return statuses;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
