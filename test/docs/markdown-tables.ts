// Reads GitHub-flavoured markdown tables the way GitHub renders them, for the docs tests: a table is
// a header row, then a separator row of `---` cells, then body rows. GitHub splits a row at every
// unescaped `|`, even inside `code`, so a stray pipe in a cell shifts every cell after it.

export interface MarkdownTable {
  /** 1-based line of the header row. */
  readonly line: number;
  /** The nearest heading above the table, without its `#`s. */
  readonly heading: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** Cells of one table row: split at unescaped pipes, outer pipes and whitespace dropped. */
export function splitRow(line: string): string[] {
  let text = line.trim();
  if (text.startsWith('|')) text = text.slice(1);
  if (text.endsWith('|') && !text.endsWith('\\|')) text = text.slice(0, -1);
  const cells: string[] = [];
  let cell = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === '|') {
      cell += '|';
      i++;
    } else if (text[i] === '|') {
      cells.push(cell.trim());
      cell = '';
    } else cell += text[i];
  }
  cells.push(cell.trim());
  return cells;
}

const SEPARATOR_CELL = /^:?-{3,}:?$/;

function isSeparator(line: string): boolean {
  return line.trim().startsWith('|') && splitRow(line).every((c) => SEPARATOR_CELL.test(c));
}

function isTableLine(line: string): boolean {
  return line.trim().startsWith('|');
}

/** Every table of a document (outside fenced code), and every problem that would keep one from rendering. */
export function readTables(markdown: string): { tables: MarkdownTable[]; problems: string[] } {
  const lines = markdown.split('\n');
  const tables: MarkdownTable[] = [];
  const problems: string[] = [];
  let heading = '';
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, '').trim();
    if (!isTableLine(line)) continue;
    const start = i;
    const block: string[] = [];
    while (i < lines.length && isTableLine(lines[i]!)) block.push(lines[i++]!);
    const where = `line ${start + 1}`;
    if (block.length < 2 || !isSeparator(block[1]!)) {
      problems.push(
        `${where}: a table needs a header row, then a separator row of --- cells (found ${JSON.stringify(block[1] ?? block[0])})`,
      );
      continue;
    }
    // A table may follow a heading directly; after paragraph text it would join the paragraph.
    const before = start > 0 ? lines[start - 1]!.trim() : '';
    if (before !== '' && !/^#{1,6} /.test(before)) {
      problems.push(
        `${where}: a table must follow a blank line, or it renders as part of the paragraph above`,
      );
    }
    const header = splitRow(block[0]!);
    const separator = splitRow(block[1]!);
    if (separator.length !== header.length) {
      problems.push(`${where}: the separator has ${separator.length} cells, the header ${header.length}`);
    }
    const rows = block.slice(2).map(splitRow);
    rows.forEach((cells, j) => {
      if (cells.length !== header.length) {
        problems.push(
          `line ${start + 3 + j}: ${cells.length} cells where the header has ${header.length} (an unescaped | in a cell? write \\|)`,
        );
      }
    });
    tables.push({ line: start + 1, heading, header, rows });
  }
  return { tables, problems };
}
