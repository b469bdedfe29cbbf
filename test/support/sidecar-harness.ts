// Starts `bin/sigil-proxy run` as another uid (the agent hands out SVIDs by uid, so each sidecar
// needs its own user, as a real one would have), waits for its "started" line, and stops it.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { asUser, startDaemon } from './daemon.js';
import { REPO_ROOT } from './harness.js';
import { TD } from './registration.js';

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
  /** Node flags before the proxy's script (e.g. `--import` a test hook). */
  nodeArgs: readonly string[] = [],
): Promise<SidecarProcess> {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, config);
  chmodSync(file, 0o644);
  const daemon = await startDaemon(
    asUser(uid, [process.execPath, ...nodeArgs, PROXY_BIN, 'run', '--config', file]),
    {
      name: `${name} sidecar`,
      started: '"msg":"Sigil proxy started"',
      timeoutMs: 30_000,
    },
  );
  return {
    child: daemon.child,
    logs: daemon.output,
    lines: (message) =>
      daemon
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{') && line.includes(`"msg":${JSON.stringify(message)}`))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: async (timeoutMs = 10_000) => {
      if (daemon.child.exitCode !== null) return daemon.child.exitCode;
      return Promise.race([
        daemon.stop(),
        new Promise<null>((resolve) => setTimeout(() => resolve(null), timeoutMs)),
      ]);
    },
  };
}

/**
 * Teardown for a file's sidecars: each gets SIGTERM, and one still running after stop()'s wait gets
 * SIGKILL, so a sidecar that hangs (a regression some tests look for) never outlives the run.
 */
export async function stopSidecars(sidecars: Iterable<SidecarProcess | undefined>): Promise<void> {
  for (const sidecar of sidecars)
    if (sidecar && (await sidecar.stop()) === null) sidecar.child.kill('SIGKILL');
}

/**
 * The configs of the smallest sidecar pair: `back` with one inbound `api` listener to the app on
 * `ports.app`, `front` with one outbound `api` listener to it that requires `${TD}/backend`, an admin
 * port each. `spiffeIds`: each also names its ID (`spiffe_id:`), for two sidecars of one uid.
 */
export function apiPairConfigs(
  workloadApi: string,
  ports: Readonly<Record<string, number>>,
  spiffeIds = false,
): { back: string; front: string } {
  const id = (name: string) => (spiffeIds ? `spiffe_id: ${TD}/${name}\n` : '');
  return {
    back: `workload_api: unix://${workloadApi}
${id('backend')}admin: 127.0.0.1:${ports.backAdmin}
inbound:
  - { name: api, listen: "127.0.0.1:${ports.inbound}", protocol: http, app: "127.0.0.1:${ports.app}" }
`,
    front: `workload_api: unix://${workloadApi}
${id('frontend')}admin: 127.0.0.1:${ports.frontAdmin}
outbound:
  - { name: api, listen: "127.0.0.1:${ports.outbound}", protocol: http, upstream: "127.0.0.1:${ports.inbound}", server_ids: ["${TD}/backend"] }
`,
  };
}
