// Starts `bin/sigil-agent run` against a test server, and runs workload processes under chosen uids
// (the agent tells workloads apart by the kernel's peer credentials, so tests need real other users).
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { asUser, startDaemon } from './daemon.js';
import { REPO_ROOT, runCommand, type ServerProcess } from './harness.js';
import { makeTrackedTempDir } from './temp-dirs.js';

export const AGENT_BIN = path.join(REPO_ROOT, 'bin', 'sigil-agent');

export interface AgentProcess {
  readonly dataDir: string;
  readonly socketPath: string;
  readonly adminSocket: string;
  readonly child: ChildProcess;
  logs(): string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<number | null>;
}

/** A directory every uid can traverse (mkdtemp makes 0700), for sockets workloads must reach. */
export function makeSharedDir(prefix = 'sigil-agent-'): { dir: string; cleanup(): void } {
  const made = makeTrackedTempDir(prefix);
  chmodSync(made.dir, 0o755);
  return made;
}

export async function startAgentProcess(
  server: ServerProcess,
  options: {
    root: string;
    joinToken?: string;
    trustBundlePath: string;
    extraArgs?: readonly string[];
    /** Runs the agent under this open-file limit (soft and hard, so Node cannot raise it). */
    nofile?: number;
  },
): Promise<AgentProcess> {
  const socketPath = path.join(options.root, 'public', 'api.sock');
  const adminSocket = path.join(options.root, 'admin.sock');
  const dataDir = path.join(options.root, 'data');
  await runCommand('mkdir', ['-p', path.dirname(socketPath)]);
  chmodSync(path.dirname(socketPath), 0o755);
  const args = [
    AGENT_BIN,
    'run',
    '--server-address',
    server.agentApiAddress,
    '--trust-domain',
    'example.org',
    '--trust-bundle-path',
    options.trustBundlePath,
    '--data-dir',
    dataDir,
    '--socket-path',
    socketPath,
    '--admin-socket',
    adminSocket,
    ...(options.joinToken ? ['--join-token', options.joinToken] : []),
    ...(options.extraArgs ?? []),
  ];
  // prlimit execs the agent: the child's pid is the agent's.
  const argv = [process.execPath, ...args];
  const daemon = await startDaemon(
    options.nofile === undefined ? argv : ['prlimit', `--nofile=${options.nofile}`, ...argv],
    { name: 'sigil-agent', started: '"msg":"Sigil agent started"', timeoutMs: 20_000 },
  );
  return {
    dataDir,
    socketPath,
    adminSocket,
    child: daemon.child,
    logs: daemon.output,
    waitForLog: (pattern, timeoutMs = 20_000) => daemon.waitForOutput(pattern, timeoutMs),
    stop: () => daemon.stop(),
  };
}

/** `sigil-agent api …` run as `uid`, the way a workload would call the agent. */
export function asWorkload(uid: number, agent: AgentProcess, ...args: string[]) {
  const [command, ...rest] = asUser(uid, [
    process.execPath,
    AGENT_BIN,
    'api',
    ...args,
    '--socket-path',
    agent.socketPath,
  ]);
  return runCommand(command!, rest);
}

/** A long-running `api watch --output json` as `uid`; resolves updates as they arrive. */
export function watchAsWorkload(uid: number, agent: AgentProcess) {
  const [command, ...rest] = asUser(uid, [
    process.execPath,
    AGENT_BIN,
    'api',
    'watch',
    '--output',
    'json',
    '--socket-path',
    agent.socketPath,
  ]);
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  const updates: Array<{ svids: Array<{ spiffe_id: string; serial: string }> }> = [];
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) if (line.trim()) updates.push(JSON.parse(line));
  });
  return {
    updates,
    waitFor: (predicate: (u: (typeof updates)[number]) => boolean, timeoutMs = 20_000) =>
      waitFor(
        () => updates.some(predicate),
        timeoutMs,
        () => `no matching watch update in ${JSON.stringify(updates)}`,
      ),
    stop: () => {
      child.kill('SIGINT');
      return new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/**
 * Ports for the daemons a test starts come from below Linux's ephemeral range (32768+), one block per
 * vitest worker: a port drawn with listen(0) and closed again is in that range, where any outgoing
 * connection or another worker's listen(0) may take it before the daemon binds it (EADDRINUSE).
 * 20000-31999 is clear of it and of the local mesh's 7400 block.
 */
const PORT_BLOCK = 1_500;
const PORT_BLOCKS = 8;
const portBase = 20_000 + ((Number(process.env.VITEST_POOL_ID ?? 1) - 1) % PORT_BLOCKS) * PORT_BLOCK;
let nextPort = 0;

export async function freePort(): Promise<number> {
  for (let tried = 0; tried < PORT_BLOCK; tried++) {
    const port = portBase + (nextPort++ % PORT_BLOCK);
    if (await canBind(port)) return port;
  }
  throw new Error(`freePort: no free port in ${portBase}-${portBase + PORT_BLOCK - 1}`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(describe());
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
