// A service's endpoints from DNS, kept current: A or AAAA records (with the configured port), or SRV
// records (lowest priority only, each target resolved to its addresses). Re-resolves when the answer's
// TTL runs out, never sooner than min_ttl nor later than MAX_DNS_TTL_MS; node's SRV API gives no TTL,
// so SRV re-resolves every min_ttl. A failed or empty answer keeps the last good set (a DNS outage
// must not empty a working pool) and retries with backoff. Deliberately no SRV weights: the balancer
// measures endpoints instead, as Linkerd does.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { type DnsConfig, type EndpointConfig, MAX_DNS_TTL_MS, MAX_ENDPOINTS } from './config.js';

/** The part of node:dns/promises' Resolver this module uses, so tests and callers can supply one. */
export interface DnsResolver {
  resolve4(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolve6(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number }>>;
}

export interface WatchDnsOptions {
  clock: Clock;
  /** Defaults to a Resolver of its own on the system's servers. */
  resolver?: DnsResolver;
  /** Called with the new set whenever it differs from the last (the first good answer included). */
  onChange(endpoints: readonly EndpointConfig[]): void;
  /** Called with ERR_UNAVAILABLE (reason `dns`) for a failed or empty answer, ERR_RESOURCE_EXHAUSTED when cut to MAX_ENDPOINTS. */
  onError(err: SigilError): void;
}

export interface DnsEndpointsWatch {
  /** The last good set, sorted by address; empty until the first good answer. */
  current(): readonly EndpointConfig[];
  /** Stops re-resolving; no callback runs afterwards. */
  close(): void;
}

/**
 * Failed answers are retried at min_ttl, doubling each time up to this (or min_ttl if larger): a
 * recovered DNS is noticed within half a minute, and an outage is not hammered.
 */
const MAX_RETRY_DELAY_MS = 30_000;

interface Answer {
  readonly endpoints: EndpointConfig[];
  /** Seconds, as DNS gives it; null when the API does not say (SRV). */
  readonly ttlSeconds: number | null;
}

/** Resolves `dns` now and keeps resolving it; endpoints carry `serverIds`. */
export function watchDnsEndpoints(
  dns: DnsConfig,
  serverIds: readonly string[],
  options: WatchDnsOptions,
): DnsEndpointsWatch {
  const { clock } = options;
  const ownResolver = options.resolver ? null : new Resolver();
  const resolver: DnsResolver = options.resolver ?? ownResolver!;
  const label = `dns ${dns.name} ${dns.type}`;
  let current: readonly EndpointConfig[] = Object.freeze([]);
  let failures = 0;
  let closed = false;
  let cancelTimer: (() => void) | null = null;

  const endpoint = (host: string, port: number): EndpointConfig =>
    Object.freeze({ address: Object.freeze({ host, port }), serverIds });

  const query = async (): Promise<Answer> => {
    if (dns.type === 'SRV')
      return { endpoints: await resolveSrv(resolver, dns.name, endpoint), ttlSeconds: null };
    const records =
      dns.type === 'A'
        ? await resolver.resolve4(dns.name, { ttl: true })
        : await resolver.resolve6(dns.name, { ttl: true });
    return {
      endpoints: records.map((r) => endpoint(r.address, dns.port!)),
      ttlSeconds: records.length > 0 ? Math.min(...records.map((r) => r.ttl)) : null,
    };
  };

  const fail = (what: string, cause?: unknown): number => {
    failures++;
    const kept =
      current.length > 0 ? `keeping the ${current.length} endpoints resolved before` : 'no endpoints yet';
    options.onError(
      new SigilError('ERR_UNAVAILABLE', `${label}: ${what}; ${kept}`, { reason: 'dns', cause }),
    );
    return Math.min(dns.minTtlMs * 2 ** (failures - 1), Math.max(MAX_RETRY_DELAY_MS, dns.minTtlMs));
  };

  const accept = (answer: Answer): number => {
    failures = 0;
    const unique = new Map(answer.endpoints.map((e) => [key(e), e]));
    let next = [...unique.values()].sort(compareEndpoints);
    if (next.length > MAX_ENDPOINTS) {
      options.onError(
        new SigilError(
          'ERR_RESOURCE_EXHAUSTED',
          `${label}: ${next.length} endpoints answered; using the first ${MAX_ENDPOINTS}`,
          {
            reason: 'dns-endpoints',
          },
        ),
      );
      next = next.slice(0, MAX_ENDPOINTS);
    }
    if (next.map(key).join(' ') !== current.map(key).join(' ')) {
      current = Object.freeze(next);
      options.onChange(current);
    }
    const ttlMs = answer.ttlSeconds === null ? 0 : answer.ttlSeconds * 1_000;
    return Math.min(Math.max(ttlMs, dns.minTtlMs), MAX_DNS_TTL_MS);
  };

  const run = async (): Promise<void> => {
    cancelTimer = null;
    let delayMs: number;
    try {
      const answer = await query();
      if (closed) return;
      delayMs = answer.endpoints.length === 0 ? fail('no usable records') : accept(answer);
    } catch (err) {
      if (closed) return;
      const code = (err as NodeJS.ErrnoException).code;
      const what =
        code === 'ENOTFOUND' || code === 'ENODATA'
          ? `no records (${code})`
          : `resolution failed (${code ?? (err as Error).message})`;
      delayMs = fail(what, err);
    }
    cancelTimer = clock.setTimer(delayMs, () => void run());
  };
  void run();

  return {
    current: () => current,
    close() {
      closed = true;
      cancelTimer?.();
      cancelTimer = null;
      // Only our own resolver: cancel() ends every query on it, and a shared one has other users.
      ownResolver?.cancel();
    },
  };
}

/**
 * SRV records of the lowest priority (RFC 2782: higher ones are for when those are unreachable, and
 * outlier detection is what finds that out), each target resolved to its IPv4 and IPv6 addresses.
 * A target that does not resolve is left out; only an empty result counts as a failure.
 */
async function resolveSrv(
  resolver: DnsResolver,
  name: string,
  endpoint: (host: string, port: number) => EndpointConfig,
): Promise<EndpointConfig[]> {
  // A target of "." says the service is decidedly not available (RFC 2782).
  const records = (await resolver.resolveSrv(name)).filter((r) => r.name !== '' && r.name !== '.');
  if (records.length === 0) return [];
  const priority = Math.min(...records.map((r) => r.priority));
  const chosen = records.filter((r) => r.priority === priority).slice(0, MAX_ENDPOINTS);
  const resolved = await Promise.all(
    chosen.map(async (r) => {
      if (isIP(r.name) !== 0) return [endpoint(r.name, r.port)];
      const [v4, v6] = await Promise.allSettled([
        resolver.resolve4(r.name, { ttl: true }),
        resolver.resolve6(r.name, { ttl: true }),
      ]);
      return [v4, v6].flatMap((s) =>
        s.status === 'fulfilled' ? s.value.map((a) => endpoint(a.address, r.port)) : [],
      );
    }),
  );
  return resolved.flat();
}

const key = (e: EndpointConfig) => `${e.address.host}|${e.address.port}`;

function compareEndpoints(a: EndpointConfig, b: EndpointConfig): number {
  if (a.address.host !== b.address.host) return a.address.host < b.address.host ? -1 : 1;
  return a.address.port - b.address.port;
}
