// Header filtering on raw header arrays ([name, value, name, value…], as node:http's rawHeaders and
// undici give them), so case, order and duplicates survive: header objects would merge duplicates
// ("1, 2") and lowercase names. One pass per message; names are lowercased only to compare.

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1: connection, keep-alive, te, trailer, transfer-encoding,
 * upgrade) plus `expect`, which node:http answers itself and undici refuses. A switch on the length
 * rather than a Set: most names have none of these lengths and are never hashed (this runs for
 * every header of every request and response).
 */
function isHopByHop(lower: string): boolean {
  switch (lower.length) {
    case 2:
      return lower === 'te';
    case 6:
      return lower === 'expect';
    case 7:
      return lower === 'trailer' || lower === 'upgrade';
    case 10:
      return lower === 'connection' || lower === 'keep-alive';
    case 17:
      return lower === 'transfer-encoding';
    default:
      return false;
  }
}

export interface FilterOptions {
  /** Lowercase names removed as well (identity headers the proxy sets itself); see `stripped`. */
  readonly strip?: ReadonlySet<string>;
  /** Keep `Connection` and `Upgrade` as they came: a WebSocket handshake needs them end to end. */
  readonly keepUpgrade?: boolean;
}

export interface FilteredHeaders {
  readonly headers: string[];
  /** True when the message declares a body (Content-Length other than 0, or Transfer-Encoding). */
  readonly hasBody: boolean;
  /** The names removed because they were in `strip`, as sent (for the caller to log). */
  readonly stripped: readonly string[];
  /**
   * How many Host fields the message had. More than one must be refused with 400 (RFC 9112
   * §3.2): the proxy and the app could each pick a different one.
   */
  readonly hostCount: number;
  /** The request fields the outbound pipeline reads (resilience/deadline.ts, retry.ts); undefined when absent. */
  readonly signals: RequestSignals;
}

export interface RequestSignals {
  /** `x-sigil-deadline`, the last one when repeated. */
  readonly deadline: string | undefined;
  /** `grpc-timeout`. */
  readonly grpcTimeout: string | undefined;
  /** `x-sigil-attempt`: an outer sidecar already retries this call chain. */
  readonly attempt: string | undefined;
  /** An `Idempotency-Key` field is present: the request is safe to repeat whatever its method. */
  readonly hasIdempotencyKey: boolean;
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * Copies `raw` without hop-by-hop headers: the fixed list, any `Proxy-*`, and any header named in a
 * Connection header (RFC 9110 §7.6.1: those are hop-by-hop too).
 */
export function filterHeaders(
  raw: readonly (string | Buffer)[],
  options: FilterOptions = {},
): FilteredHeaders {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && String(raw[i]).toLowerCase() === 'connection') {
      const value = String(raw[i + 1]);
      // `Connection: keep-alive`, which undici sends with every request, names a header that is
      // hop-by-hop anyway: no split, no set.
      if (value.length === 10 && value.toLowerCase() === 'keep-alive') continue;
      for (const token of value.split(',')) {
        const name = token.trim().toLowerCase();
        // Names already hop-by-hop go whatever Connection says (and `upgrade` stays with keepUpgrade).
        if (name === '' || isHopByHop(name)) continue;
        named ??= new Set();
        named.add(name);
      }
    }
  }
  const headers: string[] = [];
  let hasBody = false;
  let hostCount = 0;
  let stripped: string[] | undefined;
  let deadline: string | undefined;
  let grpcTimeout: string | undefined;
  let attempt: string | undefined;
  let hasIdempotencyKey = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = typeof raw[i] === 'string' ? (raw[i] as string) : (raw[i] as Buffer).toString('latin1');
    const value =
      typeof raw[i + 1] === 'string' ? (raw[i + 1] as string) : (raw[i + 1] as Buffer).toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'content-length') hasBody ||= value.trim() !== '0';
    else if (lower === 'transfer-encoding') hasBody = true;
    else if (lower === 'host') hostCount++;
    else if (lower.length >= 12 && lower.length <= 16) {
      // Lengths 12 (grpc-timeout), 15 (idempotency-key, x-sigil-attempt), 16 (x-sigil-deadline):
      // one length check keeps the common fields from four string compares each.
      if (lower === 'x-sigil-deadline') deadline = value;
      else if (lower === 'grpc-timeout') grpcTimeout = value;
      else if (lower === 'x-sigil-attempt') attempt = value;
      else if (lower === 'idempotency-key') hasIdempotencyKey = true;
    }
    const isUpgradeHeader = lower === 'connection' || lower === 'upgrade';
    if (options.keepUpgrade && isUpgradeHeader) {
      headers.push(name, value);
      continue;
    }
    if (isHopByHop(lower) || lower.startsWith('proxy-') || named?.has(lower)) continue;
    if (options.strip?.has(lower)) {
      stripped ??= [];
      stripped.push(name);
      continue;
    }
    headers.push(name, value);
  }
  return {
    headers,
    hasBody,
    stripped: stripped ?? NONE,
    hostCount,
    signals: { deadline, grpcTimeout, attempt, hasIdempotencyKey },
  };
}
