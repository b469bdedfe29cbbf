// The processes of the running mesh, written to `run.json` as each one starts. A mesh stopped
// cleanly removes the file; one killed with `kill -9` cannot, and its children (in their own process
// groups) live on holding ports and data dirs. The next run reads the file and stops each recorded
// process that is still the same process: same pid AND same start time, so a pid the kernel has
// since given to something else is never signalled.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Clock } from '../spiffe/clock.js';
import type { ProcessTable } from '../spiffe/data-dir-lock.js';

export interface RecordedProcess {
  readonly name: string;
  readonly pid: number;
  /** /proc start time (clock ticks since boot); null where /proc is missing (never stopped then). */
  readonly startTime: string | null;
}

/** A file this large was not written by us; it is ignored rather than parsed. */
const MAX_RECORD_BYTES = 64 * 1024;
/** How often a leftover is checked for having gone after SIGTERM. */
const LEFTOVER_POLL_MS = 100;

export function writeRunRecord(file: string, processes: readonly RecordedProcess[]): void {
  writeFileSync(file, `${JSON.stringify({ processes }, null, 2)}\n`, { mode: 0o600 });
}

export function removeRunRecord(file: string): void {
  rmSync(file, { force: true });
}

export function readRunRecord(file: string): RecordedProcess[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // No file: the last run stopped cleanly, or there was none.
    return [];
  }
  if (text.length > MAX_RECORD_BYTES) return [];
  try {
    const parsed = JSON.parse(text) as { processes?: unknown };
    if (!Array.isArray(parsed.processes)) return [];
    return parsed.processes.filter(
      (p): p is RecordedProcess =>
        typeof p === 'object' &&
        p !== null &&
        typeof p.name === 'string' &&
        Number.isSafeInteger(p.pid) &&
        p.pid > 1 &&
        (p.startTime === null || typeof p.startTime === 'string'),
    );
  } catch {
    // A torn write from a killed run: nothing trustworthy to act on.
    return [];
  }
}

/**
 * Stops the recorded processes that are still alive and still the same process (SIGTERM, then
 * SIGKILL after `graceMs`); returns those it stopped.
 */
export async function stopLeftovers(
  recorded: readonly RecordedProcess[],
  options: {
    processes: ProcessTable;
    clock: Clock;
    graceMs: number;
    kill?: (pid: number, signal: NodeJS.Signals) => void;
  },
): Promise<RecordedProcess[]> {
  const { processes, clock } = options;
  const kill = options.kill ?? ((pid, signal) => process.kill(pid, signal));
  // Without a start time to compare, a pid proves nothing: such a record is left alone.
  const isSame = (p: RecordedProcess) =>
    p.startTime !== null && processes.exists(p.pid) && processes.startTime(p.pid) === p.startTime;
  const alive = recorded.filter(isSame);
  const send = (p: RecordedProcess, signal: NodeJS.Signals) => {
    try {
      kill(p.pid, signal);
    } catch {
      // Gone between the check and the signal, or not ours to signal: nothing left to do.
    }
  };
  for (const p of alive) send(p, 'SIGTERM');
  const deadline = clock.nowMs() + options.graceMs;
  while (alive.some(isSame) && clock.nowMs() < deadline) {
    await new Promise<void>((resolve) => clock.setTimer(LEFTOVER_POLL_MS, resolve));
  }
  for (const p of alive.filter(isSame)) send(p, 'SIGKILL');
  return alive;
}
