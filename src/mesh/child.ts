// One component of the mesh as a child process: its output appended to its own log file, its exit
// known, and a bounded stop (SIGTERM, then SIGKILL after a grace period). Children run in their own
// process group (detached), so a Ctrl-C at the terminal reaches only sigil-mesh, which then stops
// them in order; otherwise every child would get the SIGINT at once and die in any order.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import type { Clock } from '../spiffe/clock.js';

export interface ChildSpec {
  /** What messages call it: `server`, `frontend sidecar`… */
  readonly name: string;
  readonly argv: readonly string[];
  readonly logFile: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited, however. */
  readonly exited: Promise<ChildExit>;
  hasExited(): boolean;
  /** SIGTERM, and SIGKILL when it is still running after `graceMs`; resolves once it is gone. */
  stop(graceMs: number): Promise<ChildExit>;
}

/** How much of a log file `logTail` reads at most: the last lines, not a huge log. */
const MAX_TAIL_BYTES = 64 * 1024;
/** Starts the line written before each run of a child, so a log kept across runs shows where each began. */
const RUN_MARKER = '=== sigil-mesh started ';

export function spawnChild(spec: ChildSpec, clock: Clock): Child {
  const fd = openSync(spec.logFile, 'a', 0o600);
  let exit: ChildExit | null = null;
  let child: ReturnType<typeof spawn>;
  try {
    writeSync(fd, `${RUN_MARKER}${spec.name} at ${new Date(clock.nowMs()).toISOString()} ===\n`);
    child = spawn(spec.argv[0]!, spec.argv.slice(1), {
      env: spec.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
    // A spawn that fails (no such file) emits 'error' and no 'exit'.
    child.once('error', () => {
      exit = { code: 127, signal: null };
      resolve(exit);
    });
  });
  return {
    name: spec.name,
    pid: child.pid ?? -1,
    logFile: spec.logFile,
    exited,
    hasExited: () => exit !== null,
    async stop(graceMs) {
      if (exit !== null) return exit;
      child.kill('SIGTERM');
      let cancel = () => {};
      const late = new Promise<'late'>((resolve) => {
        cancel = clock.setTimer(graceMs, () => resolve('late'));
      });
      const first = await Promise.race([exited, late]);
      cancel();
      if (first === 'late') child.kill('SIGKILL');
      return exited;
    },
  };
}

/** The last `lines` lines the latest run of a child wrote to its log ('' when it cannot be read). */
export function logTail(file: string, lines = 15): string {
  try {
    const size = statSync(file).size;
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(size, MAX_TAIL_BYTES));
      readSync(fd, buffer, 0, buffer.length, size - buffer.length);
      const text = buffer.toString('utf8');
      const marker = text.lastIndexOf(RUN_MARKER);
      const latest = marker === -1 ? text : text.slice(text.indexOf('\n', marker) + 1);
      return latest.trimEnd().split('\n').slice(-lines).join('\n');
    } finally {
      closeSync(fd);
    }
  } catch {
    // A log that was never written (the child failed to spawn): nothing to show.
    return '';
  }
}
