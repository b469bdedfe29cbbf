// Starts `bin/sigil-proxy run` as another uid (the agent hands out SVIDs by uid, so each sidecar
// needs its own user, as a real one would have), waits for its "started" line, and stops it.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from './agent-harness.js';
import { REPO_ROOT } from './harness.js';

export const PROXY_BIN = path.join(REPO_ROOT, 'bin', 'sigil-proxy');

export interface SidecarProcess {
  readonly child: ChildProcess;
  /** Everything it logged so far (pino JSON lines). */
  logs(): string;
  /** The parsed log lines whose `msg` is `message`. */
  lines(message: string): Array<Record<string, unknown>>;
  /** SIGTERM; resolves with the exit code, or null when it is still running after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** Writes `config` to `<dir>/<name>.yaml` (readable by `uid`) and runs a sidecar on it as `uid`. */
export async function startSidecarProcess(
  uid: number,
  dir: string,
  name: string,
  config: string,
): Promise<SidecarProcess> {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, config);
  chmodSync(file, 0o644);
  const child = spawn(
    'setpriv',
    [
      `--reuid=${uid}`,
      `--regid=${uid}`,
      '--clear-groups',
      process.execPath,
      PROXY_BIN,
      'run',
      '--config',
      file,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const append = (chunk: Buffer) => {
    out += chunk.toString();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const sidecar: SidecarProcess = {
    child,
    logs: () => out,
    lines: (message) =>
      out
        .split('\n')
        .filter((line) => line.startsWith('{') && line.includes(`"msg":${JSON.stringify(message)}`))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: async (timeoutMs = 10_000) => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return Promise.race([
        exited,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), timeoutMs)),
      ]);
    },
  };
  await Promise.race([
    waitFor(
      () => out.includes('"msg":"Sigil proxy started"'),
      30_000,
      () => `${name} sidecar did not start:\n${out}`,
    ),
    exited.then((code) => {
      throw new Error(`${name} sidecar exited with ${code} before starting:\n${out}`);
    }),
  ]);
  return sidecar;
}
