// The value checks the proxy config is made of (config.ts, services/config.ts), each pushing
// `<dotted path>: <rule> (got <value>)` onto one shared list and returning a fallback, so a single
// pass reports every problem in the file. Deliberately knows no key of the config itself.
import { formatDuration, parseDurationMs } from '../spiffe/duration.js';
import { quote } from '../spiffe/errors.js';
import { parseSpiffeId } from '../spiffe/id.js';
import { showValue } from './policy/match.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** Bounds of a duration key, in milliseconds; `zeroIsNone` also accepts 0 (`0`, `"0s"`), meaning "none". */
export interface DurationBounds {
  readonly minMs: number;
  readonly maxMs: number;
  readonly zeroIsNone?: boolean;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:\s]*):(\d{1,5})$/;
const ZERO = /^0+(?:\.0+)?(?:ms|s|m|h|d)?$/;

export class ConfigReader {
  readonly problems: string[] = [];

  report(at: string, message: string): void {
    this.problems.push(`${at}: ${message}`);
  }

  /** A mapping whose keys are all in `known` (each unknown key is one problem); {} if not a mapping. */
  mapping(value: unknown, at: string, known: readonly string[]): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.report(at, `must be a mapping (got ${quote(value)})`);
      return {};
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key))
        this.problems.push(`${at ? `${at}.` : ''}${key}: unknown key (known keys: ${known.join(', ')})`);
    }
    return value as Record<string, unknown>;
  }

  /** An optional mapping: absent reads as {}, so every key takes its default. */
  optionalMapping(value: unknown, at: string, known: readonly string[]): Record<string, unknown> {
    return value === undefined ? {} : this.mapping(value, at, known);
  }

  /** An optional list of at most `max` items: absent reads as []. */
  list(value: unknown, at: string, max = Number.MAX_SAFE_INTEGER): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.report(at, 'must be a list');
      return [];
    }
    if (value.length > max) this.report(at, `must have at most ${max} items (got ${value.length})`);
    return value;
  }

  /** HOST:PORT; an empty host means all interfaces (0.0.0.0), as listeners use it. */
  address(value: unknown, at: string): Address {
    const match = typeof value === 'string' ? HOST_PORT.exec(value) : null;
    if (!match || Number(match[2]) > 65535) {
      this.report(at, `${quote(value)} is not HOST:PORT`);
      return { host: '127.0.0.1', port: 0 };
    }
    return { host: (match[1] || '0.0.0.0').replace(/^\[|\]$/g, ''), port: Number(match[2]) };
  }

  /** HOST:PORT to connect to: a host must be named and the port must not be 0. */
  dialAddress(value: unknown, at: string): Address {
    const before = this.problems.length;
    const parsed = this.address(value, at);
    if (this.problems.length === before && (parsed.port === 0 || /^:/.test(String(value))))
      this.report(at, `${quote(value)} must name a host and a port from 1 to 65535`);
    return parsed;
  }

  oneOf<T extends string>(value: unknown, at: string, allowed: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    this.report(at, `must be one of ${allowed.join(', ')} (got ${quote(value)})`);
    return fallback;
  }

  count(value: unknown, at: string, min: number, max: number, fallback: number): number {
    if (value === undefined) return fallback;
    if (Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max)
      return value as number;
    this.report(at, `must be a whole number from ${min} to ${max} (got ${showValue(value)})`);
    return fallback;
  }

  ratio(value: unknown, at: string, fallback: number): number {
    if (value === undefined) return fallback;
    if (typeof value === 'number' && value >= 0 && value <= 1) return value;
    this.report(at, `must be a number from 0 to 1 (got ${showValue(value)})`);
    return fallback;
  }

  boolean(value: unknown, at: string, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value === 'boolean') return value;
    this.report(at, `must be true or false (got ${showValue(value)})`);
    return fallback;
  }

  /** A duration (`250ms`, `10s`, `5m`, or seconds) within bounds, in milliseconds. */
  duration(value: unknown, at: string, bounds: DurationBounds, fallback: number): number {
    if (value === undefined) return fallback;
    if (bounds.zeroIsNone && (value === 0 || (typeof value === 'string' && ZERO.test(value.trim()))))
      return 0;
    let ms: number;
    try {
      ms = parseDurationMs(value as string | number, at);
    } catch (err) {
      this.problems.push((err as Error).message);
      return fallback;
    }
    const none = bounds.zeroIsNone ? ' or 0 for none' : '';
    if (ms < bounds.minMs)
      this.report(at, `must be at least ${formatDuration(bounds.minMs)}${none} (got ${showValue(value)})`);
    else if (ms > bounds.maxMs)
      this.report(at, `must be at most ${formatDuration(bounds.maxMs)} (got ${showValue(value)})`);
    else return ms;
    return fallback;
  }

  /** A list of 1 to `max` SPIFFE IDs, each parsed (so normalized); `what` ends "name at least one SPIFFE ID …". */
  spiffeIds(value: unknown, at: string, max: number, what: string): readonly string[] {
    const ids = this.list(value, at, max).map((id, j) => {
      try {
        return parseSpiffeId(String(id), `${at}[${j}]`).toString();
      } catch (err) {
        this.problems.push((err as Error).message);
        return '';
      }
    });
    if (ids.length === 0) this.report(at, `name at least one SPIFFE ID ${what}`);
    return Object.freeze(ids);
  }
}
