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
    const kind =
      c < 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f)
        ? 'control character'
        : BIDI_CONTROLS.has(c)
          ? 'bidirectional control'
          : LINE_SEPARATORS.has(c)
            ? 'line separator'
            : undefined;
    if (kind !== undefined) return `${kind} U+${c.toString(16).toUpperCase().padStart(4, '0')} at index ${i}`;
  }
  return undefined;
}
