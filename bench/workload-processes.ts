// Real processes for `npm run bench:workload`: a sigil-server in a temp dir, its CLI and admin REST
// API over the admin socket, and a sigil-agent, started from bin/ exactly as an operator would.
// Mirrors test/support/harness.ts (which the compiled bench cannot import) in a smaller form.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ClientCommand, ClientReport } from './workload-clients.js';

/** dist/bench/ → repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'sigil-server');
const CLIENTS_SCRIPT = fileURLToPath(new URL('./workload-clients.js', import.meta.url));
const AGENT_BIN = path.join(REPO_ROOT, 'bin', 'sigil-agent');
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

const live = new Set<ChildProcess>();

/**
 * Last resort for a crash or a signal: SIGKILL every child still running. Synchronous, so it can run
 * in a process 'exit' handler; the orderly path is each Proc's stop().
 */
export function killLiveChildrenSync(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

export interface Proc {
  readonly child: ChildProcess;
  logs(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
  stop(): Promise<void>;
}

/**
 * Spawns `node ARGS`, keeping its stdout+stderr. No open-file limit to raise here: Node raises its
 * own soft RLIMIT_NOFILE to the hard limit at start, so only the hard limit matters (checked by the bench).
 */
export function spawnNode(args: readonly string[], options: { ipc?: boolean } = {}): Proc {
  const stdio: Array<'ignore' | 'pipe' | 'ipc'> = ['ignore', 'pipe', 'pipe'];
  if (options.ipc) stdio.push('ipc');
  const child = spawn(process.execPath, [...args], { stdio });
  live.add(child);
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
  });
  return {
    child,
    logs: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves with the first JSON log record whose msg is `message`; rejects if the process exits first. */
export function waitForLogRecord(proc: Proc, message: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const check = () => {
      for (const line of proc.logs().split('\n')) {
        if (!line.startsWith('{')) continue;
        const record = JSON.parse(line) as Record<string, unknown>;
        if (record.msg === message) {
          done();
          resolve(record);
          return;
        }
      }
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`process exited with ${code} before logging "${message}":\n${proc.logs()}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no "${message}" log line within ${START_TIMEOUT_MS} ms:\n${proc.logs()}`));
    }, START_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      proc.child.stdout!.off('data', check);
      proc.child.off('exit', onExit);
    };
    proc.child.stdout!.on('data', check);
    proc.child.once('exit', onExit);
    check();
  });
}

export interface BenchServer extends Proc {
  readonly adminSocket: string;
  /** HOST:PORT of the agent API. */
  readonly agentApiAddress: string;
  /** `sigil-server ARGS --admin-socket …`; rejects on a non-zero exit. */
  cli(...args: string[]): Promise<string>;
  /** One admin REST call over the socket (what the CLI does, without a process start). */
  admin(method: string, urlPath: string, body?: unknown): Promise<unknown>;
}

export async function startServer(dataDir: string): Promise<BenchServer> {
  const adminSocket = path.join(dataDir, 'admin.sock');
  // The rotation phase uses 20 s SVIDs, below the default min_svid_ttl of 1 minute.
  const config = path.join(path.dirname(dataDir), 'server.yaml');
  writeFileSync(config, 'trust_domain: example.org\nmin_svid_ttl: 1s\n');
  const proc = spawnNode([
    SERVER_BIN,
    'run',
    '--config',
    config,
    '--data-dir',
    dataDir,
    '--admin-socket',
    adminSocket,
    '--bind',
    '127.0.0.1:0',
  ]);
  const started = await waitForLogRecord(proc, 'Sigil server started');
  const address = started.agentApiAddress as { host: string; port: number };
  return {
    ...proc,
    adminSocket,
    agentApiAddress: `${address.host}:${address.port}`,
    cli: (...args) => runNode([SERVER_BIN, ...args, '--admin-socket', adminSocket]),
    admin: (method, urlPath, body) => adminRequest(adminSocket, method, urlPath, body),
  };
}

/** A started server with what an agent needs to attest to it. */
export interface ServerWithJoinToken {
  readonly server: BenchServer;
  /** ROOT/bundle.pem: the server's trust bundle, the agent's --trust-bundle-path. */
  readonly bundlePath: string;
  readonly joinToken: string;
}

/** startServer in ROOT/server, then its bundle on disk and a join token for nodeId. */
export async function startServerWithJoinToken(root: string, nodeId: string): Promise<ServerWithJoinToken> {
  const server = await startServer(path.join(root, 'server'));
  try {
    const bundlePath = path.join(root, 'bundle.pem');
    writeFileSync(bundlePath, await server.cli('bundle', 'show', '--format', 'pem'));
    const { token } = JSON.parse(
      await server.cli('token', 'generate', '--spiffe-id', nodeId, '--output', 'json'),
    ) as { token: string };
    return { server, bundlePath, joinToken: token };
  } catch (err) {
    // The caller never saw this server, so it cannot stop it.
    await server.stop().catch(() => {});
    throw err;
  }
}

export interface AgentOptions {
  readonly root: string;
  readonly server: BenchServer;
  readonly joinToken: string;
  readonly bundlePath: string;
  /** Write a V8 CPU profile of the agent into this directory when it exits. */
  readonly cpuProfileDir?: string;
}

export interface BenchAgent extends Proc {
  readonly socketPath: string;
}

export async function startAgent(options: AgentOptions): Promise<BenchAgent> {
  const socketPath = path.join(options.root, 'public', 'api.sock');
  // The agent does not create the socket's directory (an operator decides who may traverse it).
  mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  // Each sample is a SIGPROF; one that lands in the agent's pidfd poll() refuses that call (EINTR),
  // which is why profiled runs retry refusals (workload-clients.ts).
  const nodeFlags = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  // Every bench client runs as this uid, one connection per stream: lift the per-uid cap (256 by
  // default, to keep one uid from taking a node's whole share) above the bench's 1,100 connections.
  const configPath = path.join(options.root, 'agent.yaml');
  writeFileSync(configPath, 'workload_api:\n  max_connections_per_uid: 2048\n');
  const proc = spawnNode([
    ...nodeFlags,
    AGENT_BIN,
    'run',
    '--config',
    configPath,
    '--server-address',
    options.server.agentApiAddress,
    '--trust-domain',
    'example.org',
    '--trust-bundle-path',
    options.bundlePath,
    '--data-dir',
    path.join(options.root, 'data'),
    '--socket-path',
    socketPath,
    '--admin-socket',
    path.join(options.root, 'admin.sock'),
    '--join-token',
    options.joinToken,
  ]);
  await waitForLogRecord(proc, 'Sigil agent started');
  return { ...proc, socketPath };
}

/** A workload-clients.js child: commands out, reports in. */
export class ClientProcess {
  private readonly reports: ClientReport[] = [];
  private waiters: Array<() => void> = [];
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly proc: Proc,
  ) {
    proc.child.on('message', (report: ClientReport) => {
      this.reports.push(report);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.exited = new Promise((resolve) => proc.child.once('exit', () => resolve()));
    void this.exited.then(() => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  send(command: ClientCommand): void {
    this.proc.child.send(command);
  }

  /** Takes the first report `pick` accepts (dropping those before it); rejects on a failure report. */
  async next<T>(pick: (r: ClientReport) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = nowMs() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.reports.length; i++) {
        const report = this.reports[i]!;
        if (report.type === 'failed') throw new Error(`${this.name}: ${report.message}`);
        const picked = pick(report);
        if (picked !== undefined) {
          this.reports.splice(0, i + 1);
          return picked;
        }
      }
      if (this.proc.child.exitCode !== null || this.proc.child.signalCode !== null)
        throw new Error(`${this.name} exited while waiting for ${what}:\n${this.proc.logs()}`);
      const left = deadline - nowMs();
      if (left <= 0) throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1_000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Progress reports so far (consumed). */
  drainProgress(): number | undefined {
    let opened: number | undefined;
    for (let i = this.reports.length - 1; i >= 0; i--) {
      const report = this.reports[i]!;
      if (report.type !== 'progress') continue;
      opened = Math.max(opened ?? 0, report.opened);
      this.reports.splice(i, 1);
    }
    return opened;
  }

  async close(): Promise<void> {
    if (this.proc.child.connected) this.send({ type: 'close' });
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    await this.proc.stop();
  }
}

/** Forks dist/bench/workload-clients.js. */
export function forkClients(name: string): ClientProcess {
  return new ClientProcess(name, spawnNode([CLIENTS_SCRIPT], { ipc: true }));
}

const nowMs = () => performance.timeOrigin + performance.now();

function runNode(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${args.slice(1, 3).join(' ')} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

function adminRequest(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<unknown> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => {
          if ((res.statusCode ?? 500) >= 300)
            reject(new Error(`${method} ${urlPath}: ${res.statusCode} ${text}`));
          else resolve(text === '' ? undefined : JSON.parse(text));
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** CPU time (user + system) a process has used so far, from /proc; 10 ms resolution. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Resident set size in MiB, from /proc. */
export function rssMibOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kib / 1024;
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;
