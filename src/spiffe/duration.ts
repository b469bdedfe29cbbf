// Durations everywhere (config, flags, REST bodies) accept plain seconds or a number with a unit.
import { MAX_TIMER_DELAY_MS } from './clock.js';
import { quote, SigilError } from './errors.js';

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const BARE_SECONDS = /^\d+(?:\.\d+)?$/;
const WITH_UNITS = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const UNIT_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/**
 * Parses `90`, `90s`, `10m`, `1h`, `1h30m`, `500ms` or a number of seconds into milliseconds.
 * Zero and negative durations are refused: nothing in Sigil has a meaningful zero lifetime.
 */
export function parseDurationMs(input: string | number, field = 'duration'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input <= 0) {
      throw invalid(input, field, 'must be a positive number of seconds');
    }
    return checkRounded(input, input * 1000, field);
  }
  if (typeof input !== 'string') throw invalid(input, field, 'must be a string or a number of seconds');
  const text = input.trim();
  let totalMs: number;
  if (BARE_SECONDS.test(text)) {
    totalMs = Number(text) * 1000;
  } else if (WITH_UNITS.test(text)) {
    totalMs = 0;
    for (const [, amount, unit] of text.matchAll(UNIT_PART)) totalMs += Number(amount) * UNIT_MS[unit!]!;
  } else {
    throw invalid(input, field, 'is not a duration');
  }
  if (totalMs <= 0) throw invalid(input, field, 'must be greater than zero');
  return checkRounded(input, totalMs, field);
}

/**
 * parseDurationMs, for lifetimes that end up in certificates and JWTs (whole seconds): a fraction of
 * a second is refused rather than silently dropped.
 */
export function parseWholeSecondsMs(input: string | number, field = 'duration'): number {
  const ms = parseDurationMs(input, field);
  if (ms % 1000 !== 0) throw invalid(input, field, 'must be a whole number of seconds');
  return ms;
}

/**
 * parseDurationMs, for a configured timeout that arms a timer: at most MAX_TIMER_DELAY_MS, since Node
 * fires a longer timer after 1 ms (an idle timeout of 30d would close every connection at once).
 */
export function parseTimeoutMs(input: string | number, field = 'timeout'): number {
  const ms = parseDurationMs(input, field);
  if (ms > MAX_TIMER_DELAY_MS) {
    throw new SigilError(
      'ERR_DURATION_INVALID',
      `${field}: must be at most ${MAX_TIMER_DELAY_MS}ms, about 24 days (got ${quote(input)})`,
      { field, reason: 'timer-overflow' },
    );
  }
  return ms;
}

/** Rounding must neither turn a tiny duration into 0 nor let a huge one become Infinity or inexact. */
function checkRounded(input: unknown, totalMs: number, field: string): number {
  const ms = Math.round(totalMs);
  if (ms <= 0) throw invalid(input, field, 'must be at least 1ms');
  if (!Number.isSafeInteger(ms)) throw invalid(input, field, 'is too large');
  return ms;
}

/** Formats milliseconds the way operators write them: `1h`, `90s`, `1h30m`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms % 1000 !== 0) return `${ms}ms`;
  let seconds = ms / 1000;
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  if (seconds > 0 || parts.length === 0) parts.push(`${seconds}s`);
  return parts.join('');
}

function invalid(input: unknown, field: string, rule: string): SigilError {
  return new SigilError(
    'ERR_DURATION_INVALID',
    `${field}: ${quote(input)} ${rule} (examples: 90s, 30m, 1h)`,
    { field, reason: 'duration' },
  );
}
