// One way to run a long-lived process under test (a server, agent, sidecar, impostor or peer): spawn
// it, keep everything it writes (stdout and stderr, in arrival order) in one string, and know when it
// exits. `startDaemon` also waits for its "started" output, failing at once, with the output, when the
// process exits first. The harnesses build their daemons on this; none spawns its own.
import { type ChildProcess, spawn } from 'node:child_process';

export interface Daemon {
  readonly child: ChildProcess;
  /** Everything written so far, stdout and stderr together. */
  output(): string;
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /**
   * Resolves once the output matches `pattern` (a RegExp, or text it must contain); rejects when the
   * process exits without having written it (once its output is all read), or after `timeoutMs`.
   */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** Sends `signal` unless it already ended; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface DaemonOptions {
  /** What error messages call it: `sigil-server`, `web sidecar`… */
  readonly name: string;
  /** Defaults to this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface StartDaemonOptions extends DaemonOptions {
  /** Output that says it is up (a RegExp, or text it must contain). */
  readonly started: RegExp | string;
  /** How long it may take to get there. Defaults to 30s. */
  readonly timeoutMs?: number;
}

const DEFAULT_WAIT_MS = 30_000;

/** argv run as `uid` (and gid `uid`), with no supplementary groups; setpriv execs, so the pid is argv's. */
export function asUser(uid: number, argv: readonly string[]): string[] {
  return ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv];
}

/** Spawns argv and returns at once; see `startDaemon` to wait until it is up. */
export function spawnDaemon(argv: readonly string[], options: DaemonOptions): Daemon {
  const { name } = options;
  const child = spawn(argv[0]!, argv.slice(1), {
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const watchers = new Set<() => void>();
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    for (const watch of watchers) watch();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // 'close' comes after 'exit', once stdout and stderr are drained: only then is a miss final.
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));

  const waitForOutput = (pattern: RegExp | string, timeoutMs = DEFAULT_WAIT_MS) =>
    new Promise<void>((resolve, reject) => {
      const matches = () => (typeof pattern === 'string' ? output.includes(pattern) : pattern.test(output));
      const shown = typeof pattern === 'string' ? JSON.stringify(pattern) : String(pattern);
      const finish = (err?: Error) => {
        if (!watchers.delete(watch)) return;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const watch = () => {
        if (matches()) finish();
      };
      const timer = setTimeout(
        () => finish(new Error(`${name} did not write ${shown} within ${timeoutMs} ms:\n${output}`)),
        timeoutMs,
      );
      watchers.add(watch);
      watch();
      void closed.then((code) => {
        watch();
        finish(new Error(`${name} exited with ${code} before writing ${shown}:\n${output}`));
      });
    });

  return {
    child,
    output: () => output,
    exited,
    waitForOutput,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Spawns argv and resolves once it has written `options.started`; rejects with its output otherwise. */
export async function startDaemon(argv: readonly string[], options: StartDaemonOptions): Promise<Daemon> {
  const daemon = spawnDaemon(argv, options);
  try {
    await daemon.waitForOutput(options.started, options.timeoutMs);
  } catch (err) {
    // Timed out while still running: stop it, so a failed start leaves nothing behind.
    daemon.child.kill('SIGKILL');
    throw err;
  }
  return daemon;
}
