// Client-side checks of flag values, built on the same src/spiffe parsers the server uses, so the
// CLI refuses exactly what the server would and names the flag (`--spiffe-id: SPIFFE ID "x" …`)
// before any request is made. Values are sent as the user wrote them once they pass.
import { checkOperatorDnsName } from '../../spiffe/dns-name.js';
import { parseWholeSecondsMs } from '../../spiffe/duration.js';
import { quote } from '../../spiffe/errors.js';
import { parseSpiffeId, parseTrustDomain, parseWorkloadSpiffeId } from '../../spiffe/id.js';
import { parseSelector } from '../../spiffe/selector.js';
import { checkNotReserved } from '../../spiffe/sigil-ids.js';
import { usageError } from './args.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const UNIX_SECONDS = /^\d{1,12}$/;

export function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw usageError(`--${flag}: ${quote(value)} is not one of ${allowed.join(', ')}`, flag);
}

export function spiffeIdFlag(flag: string, value: string): string {
  return parseSpiffeId(value, `--${flag}`).toString();
}

/** For IDs an entry or a join token gives out: Sigil's reserved /sigil namespace is refused. */
export function issuedIdFlag(flag: string, value: string): string {
  return checkNotReserved(parseSpiffeId(value, `--${flag}`), `--${flag}`).toString();
}

/** For IDs a minted leaf SVID will carry: a path is needed, and the reserved namespace is refused. */
export function workloadIdFlag(flag: string, value: string): string {
  return checkNotReserved(parseWorkloadSpiffeId(value, `--${flag}`), `--${flag}`).toString();
}

export function trustDomainFlag(flag: string, value: string): string {
  return parseTrustDomain(value, `--${flag}`).name;
}

/** Checked here, sent as written: the server accepts the same duration syntax. */
export function ttlFlag(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  parseWholeSecondsMs(value, `--${flag}`);
  return value.trim();
}

export function selectorFlags(flag: string, values: readonly string[]): string[] {
  return values.map((v) => {
    const s = parseSelector(v, `--${flag}`);
    return `${s.type}:${s.value}`;
  });
}

export function dnsNameFlags(flag: string, values: readonly string[]): string[] {
  for (const name of values) checkOperatorDnsName(name, `--${flag}`);
  return [...values];
}

export function uuidFlag(flag: string, value: string): string {
  if (!UUID.test(value)) throw usageError(`--${flag}: ${quote(value)} is not an entry ID (a UUID)`, flag);
  return value.toLowerCase();
}

/** RFC 3339 (`2030-01-02T03:04:05Z`) or Unix seconds, to Unix seconds as the API wants. */
export function expiresAtFlag(flag: string, value: string): number {
  if (UNIX_SECONDS.test(value)) return Number(value);
  const ms = RFC3339.test(value) && isCalendarDate(value) ? Date.parse(value.replace(' ', 'T')) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw usageError(
      `--${flag}: ${quote(value)} is not a time (RFC 3339 such as 2030-01-02T03:04:05Z, or Unix seconds)`,
      flag,
    );
  }
  return Math.floor(ms / 1000);
}

/** Date.parse rolls 2030-02-30 over into March; an operator who typed it made a mistake. */
function isCalendarDate(value: string): boolean {
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}
