// Characters refused in every string an operator or a workload hands us to store or sign (hints,
// selectors, audiences, key IDs). Such strings are later printed by the CLI and written to logs:
// C0 and C1 controls (ESC, CSI) can rewrite an operator's terminal, and bidirectional overrides and
// line separators make text read differently from what it is. One check, so every field refuses the
// same set.

/** Unicode format characters that reorder or hide text: ALM, LRM, RLM, LRE…RLO, LRI…PDI. */
const BIDI_CONTROLS = new Set([
  0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069,
]);
/** LINE SEPARATOR and PARAGRAPH SEPARATOR: line breaks to a terminal, invisible in a field. */
const LINE_SEPARATORS = new Set([0x2028, 0x2029]);

/**
 * Describes the first refused character of `text` (e.g. `control character U+001B at index 3`), or
 * undefined when there is none: C0 controls, DEL, C1 controls, bidi controls, line separators.
 */
export function unsafeCharacterIn(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const kind = kindOf(c);
    if (kind !== undefined) return `${kind} ${codePoint(c)} at index ${i}`;
  }
  return undefined;
}

/**
 * `text` with every refused character but newline and tab written as `\uXXXX`, for what the CLIs
 * print: strings stored before they were refused, or sent by a server or agent we do not fully
 * trust, must not reach the terminal raw. The escape is also valid inside a JSON string.
 */
export function escapeUnsafeCharacters(text: string): string {
  let out: string | undefined;
  let copiedTo = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x09 || kindOf(c) === undefined) continue;
    out = `${out ?? ''}${text.slice(copiedTo, i)}\\u${c.toString(16).padStart(4, '0')}`;
    copiedTo = i + 1;
  }
  return out === undefined ? text : out + text.slice(copiedTo);
}

/** What the CLIs print to: a stream's `write`. */
export interface TextSink {
  write(chunk: string): unknown;
}

/** `sink`, escaping what `escapeUnsafeCharacters` escapes: one wrap per CLI entry point. */
export function terminalSafe(sink: TextSink): TextSink {
  return { write: (chunk: string) => sink.write(escapeUnsafeCharacters(chunk)) };
}

function kindOf(c: number): string | undefined {
  if (c < 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f)) return 'control character';
  if (BIDI_CONTROLS.has(c)) return 'bidirectional control';
  if (LINE_SEPARATORS.has(c)) return 'line separator';
  return undefined;
}

function codePoint(c: number): string {
  return `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}
