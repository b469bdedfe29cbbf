// docs/operator-guide.md's configuration reference against the parsers: every key a parser accepts
// (found by probing it, config-keys.ts) must have a row, and every row must name a key it accepts.
// Rows sit in tables under headings "sigil-server config …", "sigil-agent config …" and
// "sigil-proxy config …", the key in the first cell as `a.b[].c`. A section whose row says
// "same keys as `other.section`" stands for its keys, checked to be the same as the other's.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '../support/harness.js';
import { agentKeys, type KeyTree, proxyKeys, serverKeys } from './config-keys.js';
import { readTables } from './markdown-tables.js';

const GUIDE = path.join(import.meta.dirname, '../../docs/operator-guide.md');
const tmp = makeTempDir('sigil-config-keys-').dir;

interface DocRow {
  readonly key: string;
  readonly sameAs: string | null;
}

function documentedRows(component: string): DocRow[] {
  const { tables } = readTables(readFileSync(GUIDE, 'utf8'));
  const rows: DocRow[] = [];
  for (const table of tables) {
    if (!table.heading.startsWith(`${component} config`) || table.header[0] !== 'key') continue;
    for (const cells of table.rows) {
      const key = /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1];
      if (key === undefined)
        throw new Error(`${component}: a key cell must be one \`key\` (got ${cells[0]})`);
      const sameAs = /same keys as `([^`]+)`/.exec(cells.slice(1).join(' '))?.[1] ?? null;
      rows.push({ key, sameAs });
    }
  }
  return rows;
}

/** Keys the code accepts that the guide lacks, and rows the code does not accept. */
function compare(component: string, tree: KeyTree): { missing: string[]; extra: string[] } {
  const rows = documentedRows(component);
  const documented = new Set(rows.map((r) => r.key));
  const code = new Set(tree.paths);
  // A "same keys as" section covers its children when both sections really take the same keys.
  const covered = new Set<string>();
  const mismatched: string[] = [];
  for (const row of rows) {
    if (row.sameAs === null) continue;
    const mine = tree.sections.get(row.key);
    const theirs = tree.sections.get(row.sameAs);
    if (mine && theirs && [...mine].sort().join() === [...theirs].sort().join()) {
      for (const p of tree.paths) if (p.startsWith(`${row.key}.`)) covered.add(p);
    } else mismatched.push(`${row.key} (said to take the same keys as ${row.sameAs})`);
  }
  const missing = [...code].filter((p) => !documented.has(p) && !covered.has(p));
  const extra = [...documented].filter((p) => !code.has(p)).concat(mismatched);
  return { missing, extra };
}

function expectInStep(component: string, tree: KeyTree): void {
  expect(tree.paths.length).toBeGreaterThan(10);
  const { missing, extra } = compare(component, tree);
  const report = [
    ...missing.map((k) => `  missing from docs/operator-guide.md: ${k}`),
    ...extra.map((k) => `  documented but not accepted by the ${component} parser: ${k}`),
  ].join('\n');
  expect(report, `${component} config reference out of step with the code:\n${report}`).toBe('');
}

describe('the operator guide documents every config key, and only those', () => {
  it('sigil-server', () => expectInStep('sigil-server', serverKeys()));
  it('sigil-agent', () => expectInStep('sigil-agent', agentKeys(tmp)));
  it('sigil-proxy', () => expectInStep('sigil-proxy', proxyKeys()));

  it('notices a key the guide lacks and a row the code does not accept', () => {
    const tree = serverKeys();
    const fake: KeyTree = {
      paths: [...tree.paths.filter((p) => p !== 'ca.ttl'), 'ca.not_a_key_anywhere'],
      sections: tree.sections,
    };
    const { missing, extra } = compare('sigil-server', fake);
    expect(missing).toEqual(['ca.not_a_key_anywhere']);
    expect(extra).toContain('ca.ttl');
  });
});
