// An inbound listener's `rate_limit` key, checked into a RateLimitConfig (limiter.ts). Every value is
// bounded: rates, bursts, the number of overrides and of principals each names. Absent means no
// rate limiting on the listener, and then nothing runs per request.
import { quote } from '../../spiffe/errors.js';
import { parseSpiffeId, parseTrustDomain } from '../../spiffe/id.js';
import type { ConfigReader } from '../config-reader.js';
import { showValue } from '../policy/match.js';
import type { RateLimitConfig, RateLimitOverride } from './limiter.js';
import type { RequestRate } from './token-bucket.js';

/** One request every 10 s is the slowest rate a bucket refills at usefully for a Retry-After. */
const MIN_RATE = 0.1;
/** Far above what one sidecar serves (its HTTP/1.1 relay peaks near 20k requests a second). */
const MAX_RATE = 1_000_000;
const MAX_BURST = 10_000_000;
/** Overrides are named exceptions (Linkerd's `overrides[]`), not a second identity registry. */
export const MAX_OVERRIDES = 100;
export const MAX_OVERRIDE_PRINCIPALS = 100;
const WILDCARD_SUFFIX = '/*';
const SCHEME = 'spiffe://';

/** The checked `rate_limit` of the listener at `at`, or null when it has none. */
export function checkRateLimit(raw: unknown, at: string, r: ConfigReader): RateLimitConfig | null {
  if (raw === undefined) return null;
  const o = r.mapping(raw, at, ['total', 'per_caller', 'overrides']);
  const total =
    o.total === undefined ? null : checkRate(r.mapping(o.total, `${at}.total`, RATE_KEYS), `${at}.total`, r);
  const perCaller =
    o.per_caller === undefined
      ? null
      : checkRate(r.mapping(o.per_caller, `${at}.per_caller`, RATE_KEYS), `${at}.per_caller`, r);
  const named = new Map<string, number>();
  const overrides = r
    .list(o.overrides, `${at}.overrides`, MAX_OVERRIDES)
    .map((item, i): RateLimitOverride => {
      const where = `${at}.overrides[${i}]`;
      const m = r.mapping(item, where, ['principals', ...RATE_KEYS]);
      const principals = checkPrincipals(m.principals, `${where}.principals`, r);
      for (const principal of principals) {
        const earlier = named.get(principal);
        if (earlier !== undefined)
          r.report(`${where}.principals`, `${quote(principal)} is already in overrides[${earlier}]`);
        else named.set(principal, i);
      }
      return Object.freeze({ principals, ...checkRate(m, where, r) });
    });
  if (total === null && perCaller === null && overrides.length === 0)
    r.report(at, 'set at least one of total, per_caller or overrides');
  return Object.freeze({ total, perCaller, overrides: Object.freeze(overrides) });
}

const RATE_KEYS = ['requests_per_second', 'burst'] as const;

function checkRate(m: Record<string, unknown>, at: string, r: ConfigReader): RequestRate {
  const rate = m.requests_per_second;
  let requestsPerSecond = 1;
  if (typeof rate === 'number' && rate >= MIN_RATE && rate <= MAX_RATE) requestsPerSecond = rate;
  else
    r.report(
      `${at}.requests_per_second`,
      `must be a number from ${MIN_RATE} to ${MAX_RATE} (got ${showValue(rate)})`,
    );
  // One second's worth by default, as Linkerd's per-second limits allow; at least one request.
  const burst = r.count(m.burst, `${at}.burst`, 1, MAX_BURST, Math.max(1, Math.ceil(requestsPerSecond)));
  return Object.freeze({ requestsPerSecond, burst });
}

/** 1 to MAX_OVERRIDE_PRINCIPALS SPIFFE IDs (normalized) or `spiffe://<trust domain>/*` wildcards. */
function checkPrincipals(value: unknown, at: string, r: ConfigReader): readonly string[] {
  if (value === undefined) {
    r.report(at, 'name the SPIFFE IDs (or spiffe://<trust domain>/*) the override is for');
    return [];
  }
  const principals: string[] = [];
  r.list(value, at, MAX_OVERRIDE_PRINCIPALS).forEach((item, j) => {
    const field = `${at}[${j}]`;
    try {
      const principal =
        typeof item === 'string' && item.endsWith(WILDCARD_SUFFIX)
          ? trustDomainWildcard(item, field, r)
          : parseSpiffeId(item as string, field).toString();
      if (principal !== '') principals.push(principal);
    } catch (err) {
      r.problems.push((err as Error).message);
    }
  });
  if (Array.isArray(value) && value.length === 0) r.report(at, 'name at least one SPIFFE ID');
  return Object.freeze(principals);
}

/** `spiffe://<trust domain>/*`, normalized; a wildcard anywhere else is refused. */
function trustDomainWildcard(item: string, field: string, r: ConfigReader): string {
  const prefix = item.slice(0, -WILDCARD_SUFFIX.length);
  if (!prefix.startsWith(SCHEME) || prefix.includes('/', SCHEME.length) || prefix.includes('*')) {
    r.report(
      field,
      `${quote(item)}: only a whole trust domain may be a wildcard (spiffe://<trust domain>/*)`,
    );
    return '';
  }
  return `${parseTrustDomain(prefix, field).idString}${WILDCARD_SUFFIX}`;
}
