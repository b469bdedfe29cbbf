// Compiles a route's `RegularExpression` match. Gateway API leaves the dialect to the
// implementation and Envoy (so Istio, and most routes written today) uses RE2, which runs in
// linear time; node's RegExp backtracks, so a pattern like `(a+)+b` could take seconds on one
// header. We accept the part of RE2 that means the same in JavaScript and cannot blow up: no
// backreferences or lookaround (not RE2 either), no quantified group that holds a quantifier or
// an alternation, no POSIX classes or \Q…\E (JavaScript would read them as something else).
// A leading `(?i)` (RE2's case-insensitive flag) becomes the `i` flag. Matches are anchored (a
// full match), as Envoy's `safe_regex` and the Gateway API conformance tests expect.

/** RE2 patterns in routes stay short: Gateway API caps match values at 1024 characters. */
export const MAX_REGEX_LENGTH = 1024;

export type RegexResult =
  | { readonly ok: true; readonly regex: RegExp }
  | { readonly ok: false; readonly reason: string };

interface Group {
  /** Holds a quantifier or `|` (directly or in a nested group). */
  risky: boolean;
}

/** Compiles `source` anchored at both ends, or says why it is refused. */
export function compileRouteRegex(source: string): RegexResult {
  if (source.length === 0) return refuse('must not be empty');
  if (source.length > MAX_REGEX_LENGTH)
    return refuse(`must be at most ${MAX_REGEX_LENGTH} characters (got ${source.length})`);
  let flags = '';
  let body = source;
  if (body.startsWith('(?i)')) {
    flags = 'i';
    body = body.slice(4);
  }
  const checked = checkSyntax(body);
  if (checked !== null) return refuse(checked);
  try {
    return { ok: true, regex: new RegExp(`^(?:${body.replace(/\(\?P</g, '(?<')})$`, flags) };
  } catch (err) {
    return refuse(`is not a valid regular expression (${(err as Error).message})`);
  }
}

function refuse(reason: string): RegexResult {
  return { ok: false, reason };
}

/** Walks the pattern once; returns the first construct refused, or null. */
function checkSyntax(body: string): string | null {
  const stack: Group[] = [{ risky: false }];
  /** What the previous atom was: a group that holds a quantifier, any other atom, or nothing. */
  let last: 'risky-group' | 'atom' | 'none' = 'none';
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (c === '\\') {
      const next = body[i + 1];
      if (next === undefined) return 'ends with a lone "\\"';
      if (/[1-9]/.test(next) || next === 'k') return 'backreferences are not supported (RE2 has none)';
      if (next === 'Q' || next === 'E') return '\\Q…\\E quoting is not supported; escape each character';
      if (next === 'p' || next === 'P') return 'Unicode classes (\\p{…}) are not supported';
      if (next === 'A' || next === 'z') return '\\A and \\z are not needed: matches are anchored already';
      last = 'atom';
      i += 2;
      continue;
    }
    if (c === '[') {
      const end = classEnd(body, i);
      if (typeof end === 'string') return end;
      last = 'atom';
      i = end + 1;
      continue;
    }
    if (c === '(') {
      if (body[i + 1] === '?') {
        const rest = body.slice(i + 2, i + 4);
        if (rest.startsWith('=') || rest.startsWith('!') || rest === '<=' || rest === '<!')
          return 'lookahead and lookbehind are not supported (RE2 has none)';
        if (rest.startsWith(':')) i += 3;
        else if (rest.startsWith('<') || rest === 'P<') {
          const close = body.indexOf('>', i);
          if (close < 0) return 'has an unterminated group name';
          i = close + 1;
        } else return `group flags "(?${rest[0] ?? ''}" are not supported (only a leading "(?i)")`;
      } else i += 1;
      stack.push({ risky: false });
      last = 'none';
      continue;
    }
    if (c === ')') {
      if (stack.length === 1) return 'has an unmatched ")"';
      const group = stack.pop()!;
      if (group.risky) stack[stack.length - 1]!.risky = true;
      last = group.risky ? 'risky-group' : 'atom';
      i += 1;
      continue;
    }
    if (c === '|') {
      stack[stack.length - 1]!.risky = true;
      last = 'none';
      i += 1;
      continue;
    }
    const quantifierEnd = quantifierAt(body, i);
    if (quantifierEnd > i) {
      if (last === 'none') return `has a quantifier with nothing to repeat at offset ${i}`;
      if (last === 'risky-group')
        return 'repeats a group that holds a quantifier or "|" (e.g. "(a+)+"): it can take exponential time here; rewrite it without the nesting';
      stack[stack.length - 1]!.risky = true;
      i = quantifierEnd;
      // A lazy or possessive marker belongs to the quantifier.
      if (body[i] === '?') i += 1;
      last = 'none';
      continue;
    }
    last = 'atom';
    i += 1;
  }
  if (stack.length > 1) return 'has an unclosed "("';
  return null;
}

/** The end index (exclusive) of a quantifier starting at `i`, or `i` when there is none. */
function quantifierAt(body: string, i: number): number {
  const c = body[i];
  if (c === '*' || c === '+' || c === '?') return i + 1;
  if (c === '{') {
    const match = /^\{\d+(,\d*)?\}/.exec(body.slice(i, i + 24));
    if (match !== null) return i + match[0].length;
  }
  return i;
}

/** Index of the `]` closing the class opened at `start`, or why the class is refused. */
function classEnd(body: string, start: number): number | string {
  let i = start + 1;
  if (body[i] === '^') i += 1;
  // RE2 reads a leading "]" as a literal, JavaScript as the end of an empty class.
  if (body[i] === ']') return 'a "]" first in a class means different things in RE2 and here; write "\\]"';
  for (; i < body.length; i++) {
    const c = body[i];
    if (c === '\\') {
      const next = body[i + 1];
      if (next === 'p' || next === 'P') return 'Unicode classes (\\p{…}) are not supported';
      i += 1;
    } else if (c === '[' && body[i + 1] === ':') {
      return 'POSIX classes like [[:alpha:]] are not supported; write the range, e.g. [A-Za-z]';
    } else if (c === ']') return i;
  }
  return 'has an unclosed "["';
}
