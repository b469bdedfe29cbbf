// Turns an HTTP request target into the one form that policy decides on AND the app receives, or
// refuses it. Deciding on one string and forwarding another is how `/admin%2fx`, `/api/..%2fadmin`
// and `/admin;x=1/y` got past a DENY on `/admin/*`: the app decoded or stripped what the matcher
// took literally. So the inbound listeners forward `target` exactly as returned here, and anything
// an app could read two ways is refused (400) unless the operator opts into one reading, as Envoy's
// `path_with_escaped_slashes_action` does. Always applied (Envoy's `normalize_path` and
// `merge_slashes`): unreserved characters percent-decoded, other escapes upper-cased, characters
// RFC 3986 does not allow in a path percent-encoded, empty and "." segments removed, ".." resolved.
// Case is significant, a trailing "/" is kept (apps tell `/docs` from `/docs/`), the query is
// passed through untouched. Per request this is one scan of the target; a path already in
// canonical form (nearly all of them) is returned as the very string that came in.
import { quote } from '../../spiffe/errors.js';

/** How the ambiguous forms are treated; the config key is `path_normalization` (snake_case). */
export interface PathNormalization {
  /**
   * `%2F`, `%5C` and a raw `\`: `reject` (400, the default), `unescape` (read as "/" before the path
   * is resolved), or `keep` (ordinary characters of their segment, forwarded as `%2F`/`%5C`: an
   * app that decodes them may then see a path the policy never matched).
   */
  readonly escapedSlashes: 'reject' | 'unescape' | 'keep';
  /** `;` or `%3B` in the path (servlet-style path parameters): `reject` (default) or `keep`. */
  readonly pathParameters: 'reject' | 'keep';
  /** `%25` followed by two hex digits, an escape an app decoding twice would read: `reject` or `keep`. */
  readonly doubleEncoding: 'reject' | 'keep';
}

export const DEFAULT_PATH_NORMALIZATION: PathNormalization = Object.freeze({
  escapedSlashes: 'reject',
  pathParameters: 'reject',
  doubleEncoding: 'reject',
});

const OPTION_KEYS = {
  escaped_slashes: ['escapedSlashes', ['reject', 'unescape', 'keep']],
  path_parameters: ['pathParameters', ['reject', 'keep']],
  double_encoding: ['doubleEncoding', ['reject', 'keep']],
} as const;

/**
 * Reads a config file's `path_normalization` mapping (absent: the defaults); each problem is pushed
 * as `<at>.<key>: …` with the value found. Shared by the proxy config and `policy check`.
 */
export function checkPathNormalization(raw: unknown, at: string, problems: string[]): PathNormalization {
  if (raw === undefined) return DEFAULT_PATH_NORMALIZATION;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`${at}: must be a mapping of ${Object.keys(OPTION_KEYS).join(', ')} (got ${quote(raw)})`);
    return DEFAULT_PATH_NORMALIZATION;
  }
  const out: Record<string, string> = { ...DEFAULT_PATH_NORMALIZATION };
  for (const [key, value] of Object.entries(raw)) {
    const option = OPTION_KEYS[key as keyof typeof OPTION_KEYS];
    if (option === undefined) {
      problems.push(`${at}.${key}: unknown key (known keys: ${Object.keys(OPTION_KEYS).join(', ')})`);
    } else if (!(option[1] as readonly unknown[]).includes(value)) {
      problems.push(`${at}.${key}: must be one of ${option[1].join(', ')} (got ${quote(value)})`);
    } else {
      out[option[0]] = value as string;
    }
  }
  return Object.freeze(out) as unknown as PathNormalization;
}

declare const normalized: unique symbol;
/** A path produced by normalizeRequestTarget: the only kind policy matches against. */
export type NormalizedPath = string & { readonly [normalized]: true };

export type PathRefusalReason =
  | 'not-origin-form'
  | 'fragment'
  | 'control-character'
  | 'invalid-character'
  | 'invalid-percent-encoding'
  | 'escaped-slash'
  | 'backslash'
  | 'path-parameter'
  | 'double-encoding';

export type NormalizedTarget =
  | {
      readonly ok: true;
      /** What policy matches; null for the asterisk form (`OPTIONS *`), which has no path. */
      readonly path: NormalizedPath | null;
      /** What the app receives: the normalized path followed by the query exactly as sent. */
      readonly target: string;
    }
  | { readonly ok: false; readonly reason: PathRefusalReason; readonly message: string };

const SLASH = 0x2f;
const PERCENT = 0x25;
const QUESTION = 0x3f;
const HASH = 0x23;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;
const DOT = 0x2e;

/** Character classes of printable ASCII in a path (RFC 3986 §3.3). */
const UNRESERVED = 1;
/** sub-delims, ":" and "@": allowed raw, and never decoded when escaped (they may carry meaning). */
const ALLOWED = 2;
/** Not allowed raw in a path (`"`, `<`, `>`, `[`, `]`, `^`, `` ` ``, `{`, `|`, `}`): percent-encoded. */
const ENCODE = 3;
const CLASS = new Uint8Array(128).fill(ENCODE);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') {
  CLASS[c.charCodeAt(0)] = UNRESERVED;
}
for (const c of "!$&'()*+,;=:@/") CLASS[c.charCodeAt(0)] = ALLOWED;

/** Whether `byte` is unreserved (RFC 3986 §2.3): an escape of it is decoded (`%61` becomes `a`). */
export function isUnreservedByte(byte: number): boolean {
  return byte < 0x80 && CLASS[byte] === UNRESERVED;
}

/**
 * Whether the character `code` is percent-encoded where it stands raw in a path: non-ASCII, and
 * what RFC 3986 does not allow there (`"`, `<`, `\`, `{`…). Also true of "%", "?", "#", space
 * and control characters, which normalizeRequestTarget deals with before asking.
 */
export function isEncodedInPath(code: number): boolean {
  return code > 0x7e || CLASS[code] === ENCODE;
}

const ASTERISK: NormalizedTarget = Object.freeze({ ok: true, path: null, target: '*' });

/** Normalizes a request target in origin form (`/a/b?q`), or refuses it with the reason. */
export function normalizeRequestTarget(
  target: string,
  options: PathNormalization = DEFAULT_PATH_NORMALIZATION,
): NormalizedTarget {
  if (target === '*') return ASTERISK;
  if (target.charCodeAt(0) !== SLASH) {
    return refuse('not-origin-form', target, 'must start with "/" (only origin-form targets are relayed)');
  }
  let pathEnd = target.length;
  let isCanonical = true;
  // One pass: characters no target may hold anywhere, then the path's own rules up to the "?".
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) {
      return refuse('control-character', target, `contains a control character or space (code ${c})`);
    }
    if (c === HASH) return refuse('fragment', target, 'contains "#" (a fragment is never sent to a server)');
    if (c > 0xff) return refuse('invalid-character', target, `contains the character U+${hex4(c)}`);
    if (i >= pathEnd) continue;
    if (c === QUESTION) {
      pathEnd = i;
      continue;
    }
    if (c > 0x7e) {
      // Only HTTP/2 lets these through (node:http refuses them); each is one byte, so %XX is exact.
      isCanonical = false;
    } else if (c === PERCENT) {
      const refusal = checkEscape(target, i, options);
      if (refusal !== null) return refusal;
      if (!isCanonicalEscape(target, i, options)) isCanonical = false;
      i += 2;
    } else if (c === BACKSLASH) {
      if (options.escapedSlashes === 'reject') {
        return refuse(
          'backslash',
          target,
          'contains "\\", which some servers read as "/"',
          'escaped_slashes',
        );
      }
      isCanonical = false;
    } else if (c === SEMICOLON) {
      if (options.pathParameters === 'reject') {
        return refuse('path-parameter', target, 'contains ";" (a path parameter)', 'path_parameters');
      }
    } else if (CLASS[c] === ENCODE) {
      isCanonical = false;
    } else if (c === SLASH) {
      // An empty segment, or a "." or ".." one, is resolved away below.
      const next = target.charCodeAt(i + 1);
      if (next === SLASH || (next === DOT && isDotSegment(target, i + 1))) isCanonical = false;
    }
  }
  if (isCanonical) {
    const path = (pathEnd === target.length ? target : target.slice(0, pathEnd)) as NormalizedPath;
    return { ok: true, path, target };
  }
  const path = rewritePath(target, pathEnd, options);
  return { ok: true, path, target: pathEnd === target.length ? path : path + target.slice(pathEnd) };
}

/** Refuses what an escape at `at` (the "%") could mean two things to, under `options`. */
function checkEscape(target: string, at: number, options: PathNormalization): NormalizedTarget | null {
  const value = escapedByte(target, at);
  if (value < 0) {
    const shown = target.slice(at, at + 3);
    return refuse('invalid-percent-encoding', target, `has "${shown}", which is not "%" and two hex digits`);
  }
  if (value < 0x20 || value === 0x7f) {
    return refuse('control-character', target, `encodes a control character (%${hex2(value)})`);
  }
  if ((value === SLASH || value === BACKSLASH) && options.escapedSlashes === 'reject') {
    return refuse(
      'escaped-slash',
      target,
      `contains an encoded "${String.fromCharCode(value)}" (%${hex2(value)})`,
      'escaped_slashes',
    );
  }
  if (value === SEMICOLON && options.pathParameters === 'reject') {
    return refuse('path-parameter', target, 'contains an encoded ";" (%3B)', 'path_parameters');
  }
  const isDoubleEncoded = value === PERCENT && isEncodedEscape(target, at + 3);
  if (isDoubleEncoded && options.doubleEncoding === 'reject') {
    return refuse(
      'double-encoding',
      target,
      `contains "%25" followed by hex digits, an encoded escape (double encoding)`,
      'double_encoding',
    );
  }
  return null;
}

/** Whether the escape at `at` stays exactly as written: upper-case hex, not to be decoded. */
function isCanonicalEscape(target: string, at: number, options: PathNormalization): boolean {
  const value = escapedByte(target, at);
  if (isUnreservedByte(value)) return false;
  if ((value === SLASH || value === BACKSLASH) && options.escapedSlashes === 'unescape') return false;
  return !isLowerHex(target.charCodeAt(at + 1)) && !isLowerHex(target.charCodeAt(at + 2));
}

/**
 * The slow path, for targets that need changing: decode, encode and upper-case per character, then
 * resolve the segments as RFC 3986 §5.2.4 does (a ".." at the root stays at the root).
 */
function rewritePath(target: string, pathEnd: number, options: PathNormalization): NormalizedPath {
  let decoded = '';
  for (let i = 0; i < pathEnd; i++) {
    const c = target.charCodeAt(i);
    if (c === PERCENT) {
      const value = escapedByte(target, i);
      i += 2;
      const isSlash = value === SLASH || value === BACKSLASH;
      if (isSlash && options.escapedSlashes === 'unescape') decoded += '/';
      else if (isUnreservedByte(value)) decoded += String.fromCharCode(value);
      else decoded += `%${hex2(value)}`;
    } else if (c === BACKSLASH) {
      decoded += options.escapedSlashes === 'unescape' ? '/' : '%5C';
    } else if (isEncodedInPath(c)) {
      decoded += `%${hex2(c)}`;
    } else {
      decoded += target[i];
    }
  }
  const out: string[] = [];
  const segments = decoded.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === '..') out.pop();
    else if (segment !== '' && segment !== '.') out.push(segment);
  }
  const last = segments[segments.length - 1];
  const hasTrailingSlash = out.length > 0 && (last === '' || last === '.' || last === '..');
  return `/${out.join('/')}${hasTrailingSlash ? '/' : ''}` as NormalizedPath;
}

/** The byte an escape at `at` stands for, or -1 when `at` is not "%" and two hex digits. */
export function escapedByte(text: string, at: number): number {
  if (text.charCodeAt(at) !== PERCENT) return -1;
  const high = hexValue(text.charCodeAt(at + 1));
  const low = hexValue(text.charCodeAt(at + 2));
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

/**
 * Whether the two characters from `from` are hex digits once decoded: `%252F`, and `%25%32%46`,
 * which decoding the unreserved `%32` and `%46` would turn into `%252F`.
 */
function isEncodedEscape(text: string, from: number): boolean {
  let at = from;
  for (let digit = 0; digit < 2; digit++) {
    const escaped = escapedByte(text, at);
    const c = escaped >= 0 ? escaped : text.charCodeAt(at);
    if (hexValue(c) < 0) return false;
    at += escaped >= 0 ? 3 : 1;
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Whether `c` is a lower-case hex digit: escapes are written upper-case (`%2F`, not `%2f`). */
export function isLowerHex(c: number): boolean {
  return c >= 0x61 && c <= 0x66;
}

/** Whether the segment starting at `from` is "." or "..": the path (and so a segment) ends at "?". */
function isDotSegment(text: string, from: number): boolean {
  const isEnd = (at: number) =>
    at === text.length || text.charCodeAt(at) === SLASH || text.charCodeAt(at) === QUESTION;
  return isEnd(from + 1) || (text.charCodeAt(from + 1) === DOT && isEnd(from + 2));
}

function hex2(value: number): string {
  return value.toString(16).toUpperCase().padStart(2, '0');
}

function hex4(value: number): string {
  return value.toString(16).toUpperCase().padStart(4, '0');
}

function refuse(
  reason: PathRefusalReason,
  target: string,
  why: string,
  optionKey?: string,
): NormalizedTarget {
  const how = optionKey === undefined ? '' : ` (path_normalization.${optionKey}: reject)`;
  return { ok: false, reason, message: `request target ${quote(target)} ${why}${how}` };
}
