// The moving parts of `npm run bench:proxy`, as real processes: the tools from Debian's packages
// (installed with apt-get when missing), the app (a native HAProxy responder, or a Node one), the
// two Sigil sidecars (run as two uids, so the agent gives them two SPIFFE IDs), and an HAProxy mTLS
// pair on files exported from the same SVIDs (its configs: proxy-haproxy.ts). Orchestration and
// measurement live in proxy.ts.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './workload-processes.js';

const PROXY_BIN = path.join(REPO_ROOT, 'bin', 'sigil-proxy');
const AGENT_BIN = path.join(REPO_ROOT, 'bin', 'sigil-agent');
const BACKEND_SCRIPT = fileURLToPath(new URL('./proxy-backend.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export const TD = 'spiffe://example.org';

// ---------------------------------------------------------------------------------------------
// Tools

const TOOLS = [
  { bin: 'haproxy', pkg: 'haproxy' },
  { bin: 'wrk', pkg: 'wrk' },
  { bin: 'h2load', pkg: 'nghttp2-client' },
] as const;

function hasCommand(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

/** Installs haproxy, wrk and h2load from Debian's packages when missing; says what it does. */
export function ensureTools(log: (line: string) => void): void {
  if (!hasCommand('setpriv'))
    throw new Error('setpriv (util-linux) is needed to run the sidecars as two uids');
  const missing = TOOLS.filter((tool) => !hasCommand(tool.bin));
  for (const tool of TOOLS) {
    if (!missing.includes(tool)) log(`tools: ${tool.bin} present (${toolVersion(tool.bin)}), not installing`);
  }
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error(
      `missing ${missing.map((t) => t.bin).join(', ')}; run as root so apt-get can install them`,
    );
  const pkgs = missing.map((t) => t.pkg);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => {
    log(`tools: apt-get install -y --no-install-recommends ${pkgs.join(' ')}`);
    return spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], {
      env,
      encoding: 'utf8',
    });
  };
  let result = install();
  if (result.status !== 0) {
    // A fresh machine has no package lists yet.
    log('tools: install failed; apt-get update, then again');
    const update = spawnSync('apt-get', ['update'], { env, encoding: 'utf8' });
    if (update.status !== 0) throw new Error(`apt-get update failed:\n${update.stderr}`);
    result = install();
  }
  if (result.status !== 0) throw new Error(`apt-get install ${pkgs.join(' ')} failed:\n${result.stderr}`);
  for (const tool of missing) {
    if (!hasCommand(tool.bin)) throw new Error(`${tool.pkg} installed but ${tool.bin} is not on PATH`);
    log(`tools: installed ${tool.bin} (${toolVersion(tool.bin)})`);
  }
}

export function toolVersion(bin: string): string {
  const args = bin === 'haproxy' ? ['-v'] : bin === 'wrk' ? ['-v'] : ['--version'];
  const out = spawnSync(bin, args, { encoding: 'utf8' });
  const text = `${out.stdout ?? ''}${out.stderr ?? ''}`;
  return (text.split('\n').find((line) => /\d+\.\d+/.test(line)) ?? '?').trim();
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface BenchProc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  logs(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

/** Last resort (process 'exit'): SIGKILL every process started here that still runs. */
export function killTrackedSync(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

export function spawnTracked(
  name: string,
  file: string,
  args: readonly string[],
  options: { ipc?: boolean; cwd?: string } = {},
): BenchProc {
  const stdio: Array<'ignore' | 'pipe' | 'ipc'> = ['ignore', 'pipe', 'pipe'];
  if (options.ipc) stdio.push('ipc');
  const child = spawn(file, [...args], { stdio, cwd: options.cwd });
  if (child.pid === undefined) throw new Error(`cannot start ${name} (${file})`);
  live.add(child);
  let output = '';
  const append = (chunk: Buffer) => {
    // Enough to diagnose a failure; a chatty process must not grow the bench's heap.
    if (output.length < 1_000_000) output += chunk.toString();
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
    name,
    child,
    pid: child.pid,
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

function isRunning(proc: BenchProc): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null;
}

export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  proc?: BenchProc,
  timeoutMs = START_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (proc && !isRunning(proc)) throw new Error(`${proc.name} exited before ${what}:\n${proc.logs()}`);
    if (Date.now() > deadline)
      throw new Error(`no ${what} within ${timeoutMs} ms${proc ? `:\n${proc.logs()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * `count` distinct free ports: all are held open until every one is known, so no two callers get the
 * same port (a port freed by one probe is otherwise the next probe's likely answer).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCommand(
  file: string,
  args: readonly string[],
  timeoutMs = 120_000,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      [...args],
      { maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs },
      (error, stdout, stderr) => {
        live.delete(child);
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
    live.add(child);
  });
}

/** `args` run as `uid` (and gid `uid`), no supplementary groups: a different workload to the agent. */
export function asUid(uid: number, args: readonly string[]): string[] {
  return [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...args];
}

/** A directory owned by `uid`, so a workload running as it can write there. */
export function dirFor(uid: number, dir: string): string {
  mkdirSync(dir, { recursive: true });
  chownSync(dir, uid, uid);
  chmodSync(dir, 0o755);
  return dir;
}

export interface SvidFiles {
  readonly dir: string;
  readonly svidPem: string;
  readonly keyPem: string;
  readonly bundlePem: string;
  /** Chain then key in one file, as HAProxy's `crt` takes it. */
  readonly haproxyPem: string;
  readonly spiffeId: string;
}

/** `sigil-agent api fetch x509 --write DIR` as `uid`: the SVID the agent hands that workload. */
export async function fetchSvidFiles(uid: number, socketPath: string, dir: string): Promise<SvidFiles> {
  dirFor(uid, dir);
  const res = await runCommand(
    'setpriv',
    asUid(uid, [
      process.execPath,
      AGENT_BIN,
      'api',
      'fetch',
      'x509',
      '--write',
      dir,
      '--socket-path',
      socketPath,
      '--output',
      'json',
    ]),
  );
  if (res.code !== 0) throw new Error(`api fetch x509 as uid ${uid} failed (${res.code}): ${res.stderr}`);
  const files = {
    dir,
    svidPem: path.join(dir, 'svid.0.pem'),
    keyPem: path.join(dir, 'svid.0.key'),
    bundlePem: path.join(dir, 'bundle.0.pem'),
    haproxyPem: path.join(dir, 'haproxy.pem'),
  };
  writeFileSync(files.haproxyPem, readFileSync(files.svidPem, 'utf8') + readFileSync(files.keyPem, 'utf8'), {
    mode: 0o600,
  });
  const spiffeId = /spiffe:\/\/[^\s"]+/.exec(res.stdout)?.[0] ?? '?';
  return { ...files, spiffeId };
}

// ---------------------------------------------------------------------------------------------
// The app

export interface AppPorts {
  readonly http: number;
  readonly h2c: number;
}

/**
 * A native responder: HAProxy answering every request itself with 200 "ok" (content-length 2), on
 * HTTP/1.1 keep-alive and on h2c (prior knowledge). One thread, like the sidecars.
 */
export function responderConfig(ports: AppPorts): string {
  return `global
  nbthread 1
  maxconn 4000

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend app_http
  bind 127.0.0.1:${ports.http}
  http-request return status 200 content-type text/plain string ok

frontend app_h2c
  bind 127.0.0.1:${ports.h2c} proto h2
  http-request return status 200 content-type text/plain string ok
`;
}

export async function startApp(dir: string, ports: AppPorts, kind: 'native' | 'node'): Promise<BenchProc> {
  if (kind === 'node') {
    const proc = spawnTracked('app (node)', process.execPath, [
      BACKEND_SCRIPT,
      String(ports.http),
      String(ports.h2c),
    ]);
    await waitUntil(() => proc.logs().includes('listening'), 'app listening', proc);
    return proc;
  }
  return startHaproxy('app (haproxy responder)', path.join(dir, 'app.cfg'), responderConfig(ports), [
    ports.http,
    ports.h2c,
  ]);
}

// ---------------------------------------------------------------------------------------------
// Sidecar pairs (HAProxy's configs: proxy-haproxy.ts)

export interface PairPorts {
  /** Outbound listeners (the app side of the client sidecar). */
  readonly outHttp: number;
  readonly outTcp: number;
  readonly outH2: number;
  /** Inbound listeners (mTLS, the network side of the server sidecar). */
  readonly inHttp: number;
  readonly inTcp: number;
  readonly inH2: number;
}

/** Checks the config (`haproxy -c`), then runs it in the foreground (`-db`: no daemon, no master). */
export async function startHaproxy(
  name: string,
  configPath: string,
  config: string,
  ports: readonly number[],
): Promise<BenchProc> {
  writeFileSync(configPath, config);
  const check = await runCommand('haproxy', ['-c', '-q', '-f', configPath]);
  if (check.code !== 0)
    throw new Error(`${name}: haproxy -c rejected ${configPath}:\n${check.stdout}${check.stderr}`);
  const proc = spawnTracked(name, 'haproxy', ['-db', '-f', configPath]);
  for (const port of ports) await waitUntil(() => canConnect(port), `${name} listening on ${port}`, proc);
  return proc;
}

// ---------------------------------------------------------------------------------------------
// Sigil sidecars

export interface SidecarOptions {
  readonly name: string;
  readonly uid: number;
  readonly configPath: string;
  readonly config: string;
  /** Write a V8 CPU profile into this directory (writable by `uid`) when the sidecar exits. */
  readonly cpuProfDir?: string;
  /** Another build's bin/sigil-proxy (a patched checkout, to compare); this checkout's by default. */
  readonly proxyBin?: string;
}

/** `sigil-proxy run` as `uid`; setpriv execs node, so the pid is the sidecar's own. */
export async function startSidecar(options: SidecarOptions): Promise<BenchProc> {
  writeFileSync(options.configPath, options.config, { mode: 0o644 });
  const nodeFlags = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [];
  const proc = spawnTracked(
    options.name,
    'setpriv',
    asUid(options.uid, [
      process.execPath,
      ...nodeFlags,
      options.proxyBin ?? PROXY_BIN,
      'run',
      '--config',
      options.configPath,
    ]),
  );
  await waitUntil(() => proc.logs().includes('"msg":"Sigil proxy started"'), '"Sigil proxy started"', proc);
  return proc;
}

/** Opt-in pipelining on Sigil's HTTP/1.1 hop (bench --pipelining DEPTH[xCONNECTIONS]); absent: off. */
export interface BenchPipelining {
  readonly depth: number;
  readonly connections: number | undefined;
}

export function sigilOutboundConfig(
  ports: PairPorts,
  workloadApi: string,
  adminPort: number,
  serverId: string,
  pipelining?: BenchPipelining,
): string {
  const ids = `server_ids: ["${serverId}"]`;
  const inHttp = `127.0.0.1:${ports.inHttp}`;
  // Pipelining is a service setting, so the HTTP/1.1 listener then names a service (default settings
  // otherwise, as the legacy `upstream` form gets) instead of its own upstream.
  const connections = pipelining?.connections === undefined ? '' : `, connections: ${pipelining.connections}`;
  const services = pipelining
    ? `services:
  - { name: api-upstream, endpoints: [{ address: "${inHttp}" }], ${ids}, pipelining: { depth: ${pipelining.depth}${connections} } }
`
    : '';
  const api = pipelining ? 'service: api-upstream' : `upstream: "${inHttp}", ${ids}`;
  return `workload_api: unix://${workloadApi}
admin: 127.0.0.1:${adminPort}
${services}outbound:
  - { name: api, listen: "127.0.0.1:${ports.outHttp}", protocol: http, ${api} }
  - { name: tcp, listen: "127.0.0.1:${ports.outTcp}", protocol: tcp, upstream: "127.0.0.1:${ports.inTcp}", ${ids} }
  - { name: grpc, listen: "127.0.0.1:${ports.outH2}", protocol: http2, upstream: "127.0.0.1:${ports.inH2}", ${ids} }
`;
}

export function sigilInboundConfig(
  ports: PairPorts,
  app: AppPorts,
  workloadApi: string,
  adminPort: number,
  policyPath: string,
): string {
  return `workload_api: unix://${workloadApi}
admin: 127.0.0.1:${adminPort}
policy_file: ${policyPath}
inbound:
  - { name: api, listen: "127.0.0.1:${ports.inHttp}", protocol: http, app: "127.0.0.1:${app.http}", mode: strict }
  - { name: tcp, listen: "127.0.0.1:${ports.inTcp}", protocol: tcp, app: "127.0.0.1:${app.http}", mode: strict }
  - { name: grpc, listen: "127.0.0.1:${ports.inH2}", protocol: http2, app: "127.0.0.1:${app.h2c}", mode: strict }
`;
}

/** What a deployment would have: only the client sidecar's SPIFFE ID may call. */
export function allowPolicy(clientId: string): string {
  return `policies:
  - name: clients
    action: ALLOW
    rules:
      - from: { principals: ["${clientId}"] }
`;
}
