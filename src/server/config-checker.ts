// The checks config.ts runs on raw YAML/JSON values: each one records a problem (dotted path, rule,
// value found) instead of throwing, so an operator fixes the whole file in one go. Limits sections
// (agent_api, admin_api) are read through `limitsSection`, one style for every listener's keys.
import { parseDurationMs, parseTimeoutMs } from '../spiffe/duration.js';
import { quote, SigilError } from '../spiffe/errors.js';

export type Raw = Record<string, unknown>;

export class Checker {
  constructor(readonly problems: string[]) {}

  unknownKeys(obj: Raw, prefix: string, known: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!known.includes(key)) {
        const at = prefix ? `${prefix}.${key}` : key;
        this.problems.push(`${at}: unknown key (known keys: ${known.join(', ')})`);
      }
    }
  }

  value<T>(
    key: string,
    input: unknown,
    parse: (v: unknown) => T,
    options: { required?: string } = {},
  ): T | null {
    if (input === undefined || input === null || input === '') {
      if (options.required) this.problems.push(`${key}: is required (${options.required})`);
      return null;
    }
    return this.attempt(key, () => parse(input));
  }

  string(key: string, input: unknown, required = false): string | null {
    if (input === undefined) {
      if (required) this.problems.push(`${key}: is required`);
      return null;
    }
    if (typeof input !== 'string' || input === '') {
      this.problems.push(`${key}: must be a non-empty string (got ${quote(input)})`);
      return null;
    }
    return input;
  }

  oneOf<T extends string>(key: string, input: unknown, allowed: readonly T[]): T | null {
    if (typeof input === 'string' && (allowed as readonly string[]).includes(input)) return input as T;
    this.problems.push(`${key}: must be one of ${allowed.join(', ')} (got ${quote(input)})`);
    return null;
  }

  /** A duration (`90s`, `10m`, a number of seconds), read by `parse` (by default any positive one). */
  duration(
    key: string,
    input: unknown,
    parse: (v: string | number, field: string) => number = parseDurationMs,
  ): number | null {
    if (typeof input !== 'string' && typeof input !== 'number') {
      this.problems.push(`${key}: must be a duration such as 90s, 30m or 1h (got ${quote(input)})`);
      return null;
    }
    return this.attempt(key, () => parse(input, key));
  }

  /** A duration that arms a timer, so at most MAX_TIMER_DELAY_MS (see parseTimeoutMs). */
  timeout(key: string, input: unknown): number | null {
    return this.duration(key, input, parseTimeoutMs);
  }

  positiveInteger(key: string, input: unknown, max = Number.MAX_SAFE_INTEGER): number | null {
    if (typeof input === 'number' && Number.isSafeInteger(input) && input > 0 && input <= max) return input;
    const range = max === Number.MAX_SAFE_INTEGER ? 'of at least 1' : `from 1 to ${max}`;
    this.problems.push(`${key}: must be a whole number ${range} (got ${quote(input)})`);
    return null;
  }

  object(key: string, input: unknown): Raw {
    if (typeof input === 'object' && input !== null && !Array.isArray(input)) return input as Raw;
    this.problems.push(`${key}: must be a mapping (got ${quote(input)})`);
    return {};
  }

  /**
   * Reads the listener limits section `key` (a mapping of `known` keys, each optional): timeouts and
   * counts fall back to the default given for each when absent or invalid (the problem is recorded).
   */
  limitsSection(key: string, input: unknown, known: readonly string[]) {
    const raw = this.object(key, input ?? {});
    this.unknownKeys(raw, key, known);
    return {
      timeout: (name: string, fallbackMs: number): number =>
        raw[name] === undefined ? fallbackMs : (this.timeout(`${key}.${name}`, raw[name]) ?? fallbackMs),
      count: (name: string, fallback: number, max?: number): number =>
        raw[name] === undefined
          ? fallback
          : (this.positiveInteger(`${key}.${name}`, raw[name], max) ?? fallback),
    };
  }

  /** Runs `parse`, recording a SigilError's message under `key` (its own field prefix dropped). */
  private attempt<T>(key: string, parse: () => T): T | null {
    try {
      return parse();
    } catch (err) {
      const message = err instanceof SigilError ? err.message.replace(/^[a-z_.]+: /, '') : String(err);
      this.problems.push(`${key}: ${message}`);
      return null;
    }
  }
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
