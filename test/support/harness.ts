// Test harness for real processes: starts the compiled `bin/sigil-server run` in a temp data dir,
// waits for its "started" log line, and runs CLI commands against its admin socket. Reads like a
// story in tests: `const srv = await startServerProcess(); await srv.cli('entry', 'create', …)`.
import { type ChildProcess, execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon } from './daemon.js';
import { makeTrackedTempDir } from './temp-dirs.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'sigil-server');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ServerProcess {
  readonly dataDir: string;
  readonly adminSocket: string;
  readonly adminAddress: { host: string; port: number } | null;
  /** Where the agent API listens, as the server logged it. */
  readonly agentApi: { host: string; port: number };
  /** The same, as HOST:PORT (gRPC targets, URLs). */
  readonly agentApiAddress: string;
  readonly child: ChildProcess;
  /** Everything the server logged so far (JSON lines on stdout, banner on stderr). */
  logs(): string;
  cli(...args: string[]): Promise<CliResult>;
  /** Graceful stop (SIGTERM); resolves with the exit code. */
  stop(): Promise<number | null>;
  /** kill -9: no chance to flush or clean up. */
  kill9(): Promise<void>;
}

export interface StartOptions {
  readonly trustDomain?: string;
  /** Reuse a data dir (restart scenarios); a fresh temp dir otherwise, removed after the test file. */
  readonly dataDir?: string;
  readonly adminBind?: boolean;
  readonly configFile?: string;
  readonly extraArgs?: readonly string[];
  /** A fixed agent API port (restart scenarios keep the address agents know); 0 = any. */
  readonly agentApiPort?: number;
}

/** A temp dir removed by cleanup() or, at the latest, after the test file (temp-dirs.ts). */
export function makeTempDir(prefix = 'sigil-test-'): { dir: string; cleanup(): void } {
  return makeTrackedTempDir(prefix);
}

export async function startServerProcess(options: StartOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? makeTempDir('sigil-server-').dir;
  const adminSocket = path.join(dataDir, 'admin.sock');
  const args = [
    SERVER_BIN,
    'run',
    '--data-dir',
    dataDir,
    '--admin-socket',
    adminSocket,
    ...(options.configFile
      ? ['--config', options.configFile]
      : ['--trust-domain', options.trustDomain ?? 'example.org']),
    ...(options.adminBind ? ['--admin-bind', '127.0.0.1:0'] : []),
    '--bind',
    `127.0.0.1:${options.agentApiPort ?? 0}`,
    ...(options.extraArgs ?? []),
  ];
  // The whole line, so that the record read below is complete.
  const daemon = await startDaemon([process.execPath, ...args], {
    name: 'sigil-server',
    started: /"msg":"Sigil server started".*\n/,
    timeoutMs: 20_000,
  });
  const record = JSON.parse(
    daemon
      .output()
      .split('\n')
      .find((line) => line.startsWith('{') && line.includes('"msg":"Sigil server started"'))!,
  ) as { adminAddress?: ServerProcess['adminAddress']; agentApiAddress: { host: string; port: number } };

  return {
    dataDir,
    adminSocket,
    adminAddress: record.adminAddress ?? null,
    agentApi: record.agentApiAddress,
    agentApiAddress: `${record.agentApiAddress.host}:${record.agentApiAddress.port}`,
    child: daemon.child,
    logs: daemon.output,
    cli: (...cliArgs) => runCli([...cliArgs, '--admin-socket', adminSocket]),
    stop: () => daemon.stop(),
    kill9: async () => {
      await daemon.stop('SIGKILL');
    },
  };
}

/** Runs `bin/sigil-server ARGS` to completion. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return runBin('sigil-server', args, env);
}

/** Runs `bin/NAME ARGS` (sigil-server, sigil-agent, sigil-proxy…) to completion. */
export function runBin(
  name: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs?: number,
): Promise<CliResult> {
  return runCommand(process.execPath, [path.join(REPO_ROOT, 'bin', name), ...args], env, timeoutMs);
}

/**
 * Runs any program (openssl, curl…) to completion without throwing on a non-zero exit; killed
 * after `timeoutMs` when given, so a hung one does not outlive its test.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs?: number,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      [...args],
      { env, maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
  });
}
