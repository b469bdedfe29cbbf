// Every table in README.md and docs/*.md renders on GitHub: a header row, a separator row with as many
// cells, body rows with as many cells (no unescaped | inside a cell), and a blank line before it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTables } from './markdown-tables.js';

const ROOT = path.join(import.meta.dirname, '../..');
const FILES = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

describe('markdown tables render', () => {
  it.each(FILES)('%s', (file) => {
    const { problems } = readTables(readFileSync(path.join(ROOT, file), 'utf8'));
    expect(problems, `${file}:\n${problems.join('\n')}`).toEqual([]);
  });

  it('finds the faults it is meant to find', () => {
    const broken = [
      'text',
      '',
      '| a | b |',
      '|---|---|',
      '| `x|y` | z |',
      '',
      '| no header separator |',
      '| second row |',
      'para',
      '| a | b |',
      '|---|',
    ].join('\n');
    const { problems } = readTables(broken);
    expect(problems).toEqual([
      'line 5: 3 cells where the header has 2 (an unescaped | in a cell? write \\|)',
      'line 7: a table needs a header row, then a separator row of --- cells (found "| second row |")',
      'line 10: a table must follow a blank line, or it renders as part of the paragraph above',
      'line 10: the separator has 1 cells, the header 2',
    ]);
    const escaped = readTables('| a | b |\n|---|---|\n| `x\\|y` | z |\n');
    expect(escaped.problems).toEqual([]);
    expect(escaped.tables[0]!.rows[0]).toEqual(['`x|y`', 'z']);
  });
});
