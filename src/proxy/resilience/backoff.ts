// How long a retry waits: exponential backoff with full jitter, and the server's own `Retry-After`.
// Full jitter (a uniform draw below the exponential cap) rather than "cap ± 10%": retries from many
// sidecars after one shared failure spread over the whole interval instead of arriving in a wave.
// Pure functions; the retry layer arms the timer and takes the larger of the two delays.

/** delay-seconds longer than this many digits (~317 years) is refused rather than trusted. */
const MAX_DELAY_SECONDS_DIGITS = 10;
const DELAY_SECONDS = new RegExp(`^\\d{1,${MAX_DELAY_SECONDS_DIGITS}}$`);
/** 2^1023 is the largest finite power of two: `baseMs * 2^(retry-1)` must not become 0 * Infinity = NaN. */
const MAX_EXPONENT = 1023;

/**
 * The wait before retry number `retry` (1-based: the first retry is 1), uniform in
 * [0, min(maxMs, baseMs * 2^(retry-1))). `random` returns a number in [0, 1), like Math.random.
 */
export function backoffDelayMs(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const exponent = Math.min(Math.max(retry - 1, 0), MAX_EXPONENT);
  const capMs = Math.min(maxMs, baseMs * 2 ** exponent);
  return capMs > 0 ? random() * capMs : 0;
}

/**
 * The delay a `Retry-After` value asks for, in ms from `nowMs` (RFC 9110 §10.2.3): delay-seconds or
 * an HTTP-date in any of the three forms a recipient must accept (§5.6.7). Null when absent or
 * invalid (the caller then uses its own backoff); 0 for a date already past.
 */
export function retryAfterMs(value: string | undefined, nowMs: number): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  if (DELAY_SECONDS.test(text)) return Number(text) * 1_000;
  const dateMs = parseHttpDateMs(text, nowMs);
  return dateMs === null ? null : Math.max(0, dateMs - nowMs);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY_NAME = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY_NAME = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
/** IMF-fixdate, the preferred form: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = new RegExp(`^${DAY_NAME}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
/** Obsolete RFC 850 form: `Sunday, 06-Nov-94 08:49:37 GMT`. */
const RFC850_DATE = new RegExp(`^${LONG_DAY_NAME}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
/** Obsolete asctime form: `Sun Nov  6 08:49:37 1994` (a single-digit day is space-padded). */
const ASCTIME_DATE = new RegExp(`^${DAY_NAME} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

/**
 * An HTTP-date as epoch ms, or null. Written out rather than left to Date.parse, whose accepted
 * forms are engine-defined and which rolls "Feb 30" over into March. The day name is checked for
 * form only, not against the date: nothing a retry decides depends on it.
 */
function parseHttpDateMs(text: string, nowMs: number): number | null {
  let match = IMF_FIXDATE.exec(text);
  if (match !== null) return utcMs(Number(match[3]), match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  match = ASCTIME_DATE.exec(text);
  if (match !== null) return utcMs(Number(match[6]), match[1]!, match[2]!, match[3]!, match[4]!, match[5]!);
  match = RFC850_DATE.exec(text);
  if (match !== null) {
    const year = fullYearOf(Number(match[3]), nowMs);
    return utcMs(year, match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  }
  return null;
}

/**
 * RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in the future is the most
 * recent past year with those digits.
 */
function fullYearOf(twoDigits: number, nowMs: number): number {
  const currentYear = new Date(nowMs).getUTCFullYear();
  let year = currentYear - (currentYear % 100) + twoDigits;
  if (year > currentYear + 50) year -= 100;
  return year;
}

function utcMs(year: number, monthName: string, day: string, hour: string, minute: string, second: string) {
  const month = MONTHS.indexOf(monthName);
  const d = Number(day);
  const h = Number(hour);
  const m = Number(minute);
  // 60 is a leap second (RFC 5322 allows it); it lands on the next minute's first second.
  const s = Number(second);
  if (d < 1 || d > daysInMonth(year, month) || h > 23 || m > 59 || s > 60) return null;
  // Date.UTC reads years 0-99 as 1900-1999: shift such a year by whole 400-year cycles instead.
  return year >= 100
    ? Date.UTC(year, month, d, h, m, s)
    : Date.UTC(year + 2000, month, d, h, m, s) - 5 * YEARS_400_MS;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** The Gregorian calendar repeats every 400 years, 146,097 days. */
const YEARS_400_MS = 146_097 * 86_400_000;

function daysInMonth(year: number, month: number): number {
  const isLeap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 1 && isLeap ? 29 : DAYS_IN_MONTH[month]!;
}
