// A sidecar bench's temp dir and the processes it starts, and the one way they all go away: in order
// at the end of the run or on SIGINT/SIGTERM, and with SIGKILL (synchronously) when the bench exits
// any other way, so that no server, agent, sidecar or key is left behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BenchProc, dirFor, killTrackedSync } from './proxy-setup.js';
import { killLiveChildrenSync } from './workload-processes.js';

export interface BenchScope {
  /** A fresh dir under os.tmpdir() that every uid may traverse. */
  readonly root: string;
  /** Load clients: closed first, so that none is left sending to a process being stopped. */
  readonly clients: Array<{ close(): Promise<void> }>;
  /** Apps and sidecars: stopped next, together and gracefully (a profiled sidecar writes its profile on exit). */
  readonly procs: BenchProc[];
  /** Server and agent: stopped last, the last started first, once nothing depends on them. */
  readonly daemons: Array<{ stop(): Promise<void> }>;
  /** Stops everything above and removes root; later calls do nothing. */
  cleanup(): Promise<void>;
}

/** Makes the scope's dir (sigil-bench-NAME-…) and hooks its cleanup to exit and the signals. */
export function openBenchScope(name: string, log: (line: string) => void): BenchScope {
  const root = mkdtempSync(path.join(tmpdir(), `sigil-bench-${name}-`));
  // Other uids (the sidecars) must reach the agent socket and their config files.
  dirFor(0, root);
  const killAndRemoveSync = () => {
    killTrackedSync();
    killLiveChildrenSync();
    rmSync(root, { recursive: true, force: true });
  };
  let cleanedUp = false;
  const scope: BenchScope = {
    root,
    clients: [],
    procs: [],
    daemons: [],
    cleanup: async () => {
      if (cleanedUp) return;
      cleanedUp = true;
      await Promise.all(scope.clients.splice(0).map((c) => c.close().catch(() => {})));
      await Promise.all(scope.procs.splice(0).map((p) => p.stop().catch(() => {})));
      for (const daemon of scope.daemons.splice(0).reverse()) await daemon.stop().catch(() => {});
      killAndRemoveSync();
    },
  };
  process.once('exit', killAndRemoveSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`\n${signal}: stopping every process started by the bench`);
      void scope.cleanup().finally(() => process.exit(130));
    });
  }
  return scope;
}

/** Runs a bench's main: what it returns is the exit status; a failure is printed with its stack, status 1. */
export function runBench(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(
        `bench:${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
