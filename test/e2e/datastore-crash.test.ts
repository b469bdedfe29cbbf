// Durability for real: a child process writes entries through the compiled SQLite store and prints
// each id only after createEntry resolved; we SIGKILL it mid-stream, reopen the file and require
// every acknowledged entry, intact, in a database that passes integrity_check. Two rounds, so the
// second writer also starts from a crashed (unrecovered) WAL.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/server/datastore/sqlite/sqlite-store.js';
import { ManualClock } from '../../src/spiffe/clock.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Acknowledgements to wait for before the kill: enough that the kill lands amid steady writing. */
const ACKS_BEFORE_KILL = 150;

// The writer: entry i has spiffe id /w/<i>, selector unix:uid:<i> and hint h<i>, so the test can
// rebuild what it expects from the index alone. It never stops on its own.
const WRITER = `
const [root, dbPath, startArg] = process.argv.slice(2);
const { openSqliteStore } = await import(new URL('dist/src/server/datastore/sqlite/sqlite-store.js', root));
const { systemClock } = await import(new URL('dist/src/spiffe/clock.js', root));
const store = await openSqliteStore({ path: dbPath, clock: systemClock });
for (let i = Number(startArg); ; i++) {
  const entry = await store.createEntry({
    spiffeId: 'spiffe://example.org/w/' + i,
    parentId: 'spiffe://example.org/agent',
    selectors: [{ type: 'unix', value: 'uid:' + i }],
    x509SvidTtlMs: i,
    jwtSvidTtlMs: 0,
    dnsNames: ['w' + i + '.example.org'],
    federatesWith: [],
    admin: false,
    downstream: false,
    hint: 'h' + i,
    expiresAtMs: null,
  });
  process.stdout.write('ack ' + i + ' ' + entry.id + ' ' + entry.revision + '\\n');
}
`;

interface Ack {
  readonly index: number;
  readonly id: string;
  readonly revision: number;
}

describe('sqlite datastore survives SIGKILL', () => {
  let dir: string | undefined;
  let child: ChildProcess | undefined;

  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a writer at `start`, SIGKILLs it after ACKS_BEFORE_KILL acks, returns the complete ack lines. */
  async function writeUntilKilled(script: string, dbPath: string, start: number): Promise<Ack[]> {
    const proc = spawn(process.execPath, [script, pathToFileURL(ROOT).href, dbPath, String(start)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // 'close', not 'exit': it waits for stdout to drain, so no acknowledgement is left unread.
    const closed = new Promise<void>((resolve) => proc.on('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      proc.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.split('\n').length > ACKS_BEFORE_KILL) {
          // Kill at once, while the writer is mid-stream (its next commit is likely in flight).
          proc.kill('SIGKILL');
          resolve();
        }
      });
      proc.on('exit', (code, signal) =>
        reject(new Error(`writer exited early (${code ?? signal}): ${stderr}`)),
      );
    });
    await closed;
    expect(proc.signalCode).toBe('SIGKILL');
    // A line without its newline may be cut short by the kill; only whole lines are acknowledgements.
    const whole = stdout.slice(0, stdout.lastIndexOf('\n') + 1);
    return whole
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [, index, id, revision] = line.split(' ');
        return { index: Number(index), id: id!, revision: Number(revision) };
      });
  }

  it('keeps every acknowledged entry intact across two kills', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sigil-crash-'));
    const script = join(dir, 'writer.mjs');
    writeFileSync(script, WRITER);
    const dbPath = join(dir, 'datastore.sqlite3');

    const first = await writeUntilKilled(script, dbPath, 0);
    const second = await writeUntilKilled(script, dbPath, 100_000);
    const acks = [...first, ...second];
    expect(first.length).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);
    expect(second.length).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);
    // Revisions are strictly increasing across both writers, kill included.
    for (let i = 1; i < acks.length; i++) expect(acks[i]!.revision).toBeGreaterThan(acks[i - 1]!.revision);

    const raw = new BetterSqlite3(dbPath);
    try {
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(raw.pragma('foreign_key_check')).toEqual([]);
    } finally {
      raw.close();
    }

    const store = await openSqliteStore({ path: dbPath, clock: new ManualClock() });
    try {
      for (const ack of acks) {
        const entry = await store.fetchEntry(ack.id);
        expect(entry).toMatchObject({
          spiffeId: `spiffe://example.org/w/${ack.index}`,
          selectors: [{ type: 'unix', value: `uid:${ack.index}` }],
          x509SvidTtlMs: ack.index,
          dnsNames: [`w${ack.index}.example.org`],
          hint: `h${ack.index}`,
          revision: ack.revision,
        });
      }
      // At most the one unacknowledged write per writer in flight at the kill may also have landed.
      const count = await store.countEntries();
      expect(count).toBeGreaterThanOrEqual(acks.length);
      expect(count).toBeLessThanOrEqual(acks.length + 2);
    } finally {
      await store.close();
    }
  });
});
