// Temp dirs the test helpers make on a test's behalf (a server's data dir with its CA keys and
// SQLite file, a shared socket dir): each is removed after its test file by file-cleanup.ts, so a
// test that forgets cleanup() or restarts a server on the same dir still leaves nothing behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const made = new Set<string>();

/** A fresh dir under os.tmpdir(), removed by cleanup() or, at the latest, after the test file. */
export function makeTrackedTempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  made.add(dir);
  return {
    dir,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
      made.delete(dir);
    },
  };
}

/** Removes every tracked dir still there. */
export function removeTrackedTempDirs(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}
