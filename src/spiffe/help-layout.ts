// Help text layout shared by the CLIs: two columns (name, description) whose descriptions all start
// at one offset and wrap within HELP_WIDTH, so no line runs into the next column or off a terminal.

/** No help line is longer than this: a terminal of 100 columns shows every line whole. */
export const HELP_WIDTH = 100;

/**
 * Rows of `[left, right]` as two columns: the right column starts two spaces after the longest left
 * cell (at most `maxLeft` wide; a longer left cell gets its description on the next line) and wraps
 * at word boundaries within HELP_WIDTH.
 */
export function helpColumns(
  rows: ReadonlyArray<readonly [string, string]>,
  indent = 2,
  maxLeft = 50,
): string {
  const fitting = rows.map(([left]) => left.length).filter((n) => n <= maxLeft);
  const offset = indent + Math.max(0, ...fitting) + 2;
  const lines: string[] = [];
  for (const [left, right] of rows) {
    const head = `${' '.repeat(indent)}${left}`;
    const body = wrapWords(right, HELP_WIDTH - offset);
    if (head.length + 2 > offset) lines.push(head);
    else lines.push(`${head.padEnd(offset)}${body.shift() ?? ''}`.trimEnd());
    for (const rest of body) lines.push(`${' '.repeat(offset)}${rest}`);
  }
  return lines.join('\n');
}

/** `text` as a paragraph of lines no longer than HELP_WIDTH, each after `indent` spaces. */
export function helpParagraph(text: string, indent = 0): string {
  return wrapWords(text, HELP_WIDTH - indent)
    .map((line) => `${' '.repeat(indent)}${line}`)
    .join('\n');
}

/** Greedy word wrap; a single word longer than `width` stays whole on its own line. */
function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}
