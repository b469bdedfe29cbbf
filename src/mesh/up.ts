// `sigil-mesh up`: a whole Sigil mesh on one machine, driven only through the components' own
// binaries, CLIs and admin endpoints, as an operator would: a server for sigil.local, a join token,
// an agent attested with it, entries for two demo services, the two apps, and a sidecar in front of
// each that picks its identity with `spiffe_id`. Everything lives under <dir>/mesh. A second run
// reuses the server's database and the agent's SVID (no new token, no duplicate entries). The mesh
// directory is claimed like a data dir, so two meshes never share one, and what a `kill -9`'d run
// left running is stopped first. Stops in reverse order on a signal, or when a component dies.

import { existsSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Clock, holdProcessOpen } from '../spiffe/clock.js';
import { lockDataDir, type ProcessTable, procProcessTable } from '../spiffe/data-dir-lock.js';
import { isSigilError } from '../spiffe/errors.js';
import type { Child } from './child.js';
import { logTail } from './child.js';
import {
  BACKEND_ID,
  FRONTEND_ID,
  type MeshFiles,
  meshFiles,
  NODE_ID,
  TRUST_DOMAIN,
  writeMeshConfigs,
} from './configs.js';
import { type MeshLayout, meshLayout, PORT_COUNT, type PortPlan, portPlan } from './layout.js';
import { checkPortsFree, isPortFree, MESH_HOST } from './ports.js';
import { isHttpOk, pollUntil } from './readiness.js';
import type { MeshSummary, Reporter } from './reporter.js';
import { readRunRecord, removeRunRecord, stopLeftovers } from './run-record.js';
import { agentSpiffeId, agentSvidExpiresAtMs, hasEntries } from './saved-state.js';
import { commandRunner, type RunCommand, SigilClis } from './sigil-clis.js';
import { ComponentFailed, STOP_GRACE_MS, StopRequested, Supervisor } from './supervisor.js';

export interface MeshBins {
  readonly node: string;
  readonly server: string;
  readonly agent: string;
  readonly proxy: string;
  /** The compiled demo-app-main.js. */
  readonly demoApp: string;
}

export interface MeshOptions {
  /** The --dir value as given; resolved against `cwd`. */
  readonly dir: string;
  readonly cwd: string;
  readonly basePort: number;
  /** This process's uid: the demo entries select it, and sockets must belong to it. */
  readonly uid: number;
  readonly clock: Clock;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly bins: MeshBins;
  readonly reporter: Reporter;
  /** Aborted (with the signal's name as reason) when the user asks the mesh to stop. */
  readonly signal: AbortSignal;
  readonly processes?: ProcessTable;
  readonly run?: RunCommand;
}

/** Demo SVIDs live 2 minutes, so `sigil-agent api watch` shows a rotation about every minute. */
const DEMO_X509_SVID_TTL = '2m';
/** An agent SVID with less left than this is not worth reusing: attest again with a new token. */
const AGENT_SVID_MIN_LEFT_MS = 60_000;
const POLL_INTERVAL_MS = 200;
/** How long each kind of component may take to become ready (a cold server makes its CA). */
const READY_TIMEOUT_MS = { server: 60_000, agent: 60_000, app: 20_000, sidecar: 60_000 } as const;

interface Run {
  readonly o: MeshOptions;
  readonly layout: MeshLayout;
  readonly files: MeshFiles;
  readonly ports: PortPlan;
  readonly supervisor: Supervisor;
  readonly clis: SigilClis;
}

/** Runs the mesh until a signal or a failure; resolves with the exit code once everything stopped. */
export async function runMesh(o: MeshOptions): Promise<number> {
  const release = holdProcessOpen();
  try {
    const processes = o.processes ?? procProcessTable();
    const layout = meshLayout(path.resolve(o.cwd, o.dir), o.uid);
    for (const dir of [layout.root, layout.configDir, layout.logDir])
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lock = lockDataDir(layout.root, { what: 'sigil-mesh', field: '--dir', flag: '--dir', processes });
    try {
      const leftovers = await stopLeftovers(readRunRecord(layout.runFile), {
        processes,
        clock: o.clock,
        graceMs: STOP_GRACE_MS,
      });
      if (leftovers.length > 0) {
        const list = leftovers.map((p) => `${p.name} (pid ${p.pid})`).join(', ');
        o.reporter.note(`stopped what a killed earlier run left running: ${list}`);
      }
      removeRunRecord(layout.runFile);
      const ports = portPlan(o.basePort);
      await checkPortsFree(ports, o.basePort);
      return await upUntilStopped(o, layout, ports, processes);
    } finally {
      lock.release();
    }
  } catch (err) {
    // A refused start (port in use, mesh dir held by another sigil-mesh) changed nothing: exit 2.
    if (isSigilError(err, 'ERR_CONFIG_INVALID') || isSigilError(err, 'ERR_DATA_DIR_LOCKED')) {
      o.reporter.failed(err.message, null, null, '');
      return 2;
    }
    throw err;
  } finally {
    release();
  }
}

async function upUntilStopped(o: MeshOptions, layout: MeshLayout, ports: PortPlan, processes: ProcessTable) {
  const supervisor = new Supervisor({ clock: o.clock, runFile: layout.runFile, processes, signal: o.signal });
  const clis = new SigilClis(o.run ?? commandRunner(o.env), o.bins, layout.serverAdminSocket);
  const run: Run = { o, layout, files: meshFiles(layout), ports, supervisor, clis };
  const startedAtMs = o.clock.nowMs();
  o.reporter.starting(shown(o, layout.root), { first: o.basePort, last: o.basePort + PORT_COUNT - 1 });
  if (layout.socketFallback) o.reporter.note(layout.socketFallback);
  let code = 0;
  try {
    await startComponents(run);
    o.reporter.ready(summary(run), o.clock.nowMs() - startedAtMs);
    await supervisor.guard(new Promise<never>(() => {}));
  } catch (err) {
    if (err instanceof StopRequested) o.reporter.stopping(err.reason);
    else {
      code = 1;
      if (err instanceof ComponentFailed)
        o.reporter.failed(
          err.message,
          err.child.name,
          shown(o, err.child.logFile),
          logTail(err.child.logFile),
        );
      else o.reporter.failed(String(isSigilError(err) ? err.message : err), null, null, '');
      o.reporter.stopping('a component failed');
    }
  }
  const stoppingAtMs = o.clock.nowMs();
  const names = await supervisor.stopAll();
  for (const socket of [layout.serverAdminSocket, layout.agentAdminSocket, layout.workloadApiSocket])
    removeSocket(socket);
  const left = await whatIsLeft(run);
  o.reporter.stopped(names, o.clock.nowMs() - stoppingAtMs, left);
  return left.length > 0 ? 1 : code;
}

async function startComponents(run: Run): Promise<void> {
  const { layout, o } = run;
  const serverIsNew = !hasEntries(layout.serverData);
  if (serverIsNew && hasEntries(layout.agentData)) {
    // The agent's saved SVID and bundle belong to a CA that is gone: it must attest afresh.
    rmSync(layout.agentData, { recursive: true, force: true });
    o.reporter.note('new server data: removed the agent state that belonged to the old one');
  }
  writeMeshConfigs(layout, run.files, run.ports);
  // What does not depend on each other starts together: the apps at once, the agent beside the
  // registration (its sidecars wait for their SVIDs anyway).
  const apps = Promise.all([
    startApp(run, 'backend', run.ports.backendApp),
    startApp(run, 'frontend', run.ports.frontendApp),
  ]);
  // Awaited below; a failure meanwhile also ends the waits in between (guard).
  apps.catch(() => {});
  await startServer(run, serverIsNew);
  const token = await joinTokenIfNeeded(run);
  // The bundle is what an agent trusts the server with on first contact: needed to attest.
  if (token !== null || !existsSync(run.files.bundle))
    writeFileSync(run.files.bundle, await run.supervisor.guard(run.clis.bundlePem()), { mode: 0o644 });
  await Promise.all([startAgent(run, token), registerEntries(run)]);
  await apps;
  await Promise.all([
    startSidecar(
      run,
      'backend',
      BACKEND_ID,
      run.files.backendProxy,
      run.ports.backendAdmin,
      run.ports.backendInbound,
    ),
    startSidecar(
      run,
      'frontend',
      FRONTEND_ID,
      run.files.frontendProxy,
      run.ports.frontendAdmin,
      run.ports.frontendInbound,
    ),
  ]);
}

async function startServer(run: Run, isNew: boolean): Promise<void> {
  const t = run.o.clock.nowMs();
  const child = start(run, 'server', [run.o.bins.server, 'run', '--config', run.files.serverConfig]);
  const admin = { socketPath: run.layout.serverAdminSocket, uid: run.o.uid };
  await waitUp(run, child, 'ready', READY_TIMEOUT_MS.server, () => isHttpOk(admin, '/readyz'));
  const detail = isNew
    ? `${TRUST_DOMAIN}, new self-signed CA ready`
    : `${TRUST_DOMAIN}, CA and entries reused`;
  run.o.reporter.up('server', detail, run.o.clock.nowMs() - t);
}

/** A token only when the agent has no SVID worth reusing; a restarted agent needs none. */
async function joinTokenIfNeeded(run: Run): Promise<string | null> {
  const t = run.o.clock.nowMs();
  const leftMs = agentSvidExpiresAtMs(run.layout.agentData) - run.o.clock.nowMs();
  if (leftMs > AGENT_SVID_MIN_LEFT_MS) {
    run.o.reporter.up('join token', 'not needed: the agent kept its SVID', run.o.clock.nowMs() - t);
    return null;
  }
  const token = await run.supervisor.guard(run.clis.joinToken(NODE_ID));
  run.o.reporter.up('join token', `single use, for ${NODE_ID}`, run.o.clock.nowMs() - t);
  return token;
}

async function registerEntries(run: Run): Promise<void> {
  const t = run.o.clock.nowMs();
  const entries = [
    { spiffeId: FRONTEND_ID, parentId: NODE_ID, hint: 'frontend', x509SvidTtl: DEMO_X509_SVID_TTL },
    { spiffeId: BACKEND_ID, parentId: NODE_ID, hint: 'backend', x509SvidTtl: DEMO_X509_SVID_TTL },
  ];
  const selector = `unix:uid:${run.o.uid}`;
  const created = await run.supervisor.guard(run.clis.ensureEntries(entries, selector, run.files.entries));
  const paths = (ids: readonly string[]) =>
    ids.map((id) => id.slice(`spiffe://${TRUST_DOMAIN}`.length)).join(', ');
  const detail =
    created.length === 0
      ? `${paths(entries.map((e) => e.spiffeId))} already registered`
      : `created ${paths(created)} for ${selector}`;
  run.o.reporter.up('entries', detail, run.o.clock.nowMs() - t);
}

async function startAgent(run: Run, token: string | null): Promise<void> {
  const t = run.o.clock.nowMs();
  const args = [run.o.bins.agent, 'run', '--config', run.files.agentConfig];
  const child = start(run, 'agent', token === null ? args : [...args, '--join-token', token]);
  const admin = { socketPath: run.layout.agentAdminSocket, uid: run.o.uid };
  await waitUp(run, child, 'healthy', READY_TIMEOUT_MS.agent, () => isHttpOk(admin, '/healthz'));
  const id = agentSpiffeId(run.layout.agentData);
  const detail = token === null ? `reused its SVID, ${id}` : `attested as ${id}`;
  run.o.reporter.up('agent', detail, run.o.clock.nowMs() - t);
}

async function startApp(run: Run, name: string, port: number): Promise<void> {
  const t = run.o.clock.nowMs();
  const child = start(run, `${name} app`, [run.o.bins.demoApp, name, `${MESH_HOST}:${port}`]);
  const app = { host: MESH_HOST, port };
  await waitUp(run, child, 'listening', READY_TIMEOUT_MS.app, () => isHttpOk(app, '/'));
  run.o.reporter.up(`${name} app`, `demo app on ${MESH_HOST}:${port}`, run.o.clock.nowMs() - t);
}

async function startSidecar(
  run: Run,
  name: string,
  spiffeId: string,
  config: string,
  adminPort: number,
  inboundPort: number,
): Promise<void> {
  const t = run.o.clock.nowMs();
  const child = start(run, `${name} sidecar`, [run.o.bins.proxy, 'run', '--config', config]);
  const admin = { host: MESH_HOST, port: adminPort };
  await waitUp(run, child, 'ready', READY_TIMEOUT_MS.sidecar, () => isHttpOk(admin, '/ready'));
  run.o.reporter.up(
    `${name} sidecar`,
    `${spiffeId}, inbound ${MESH_HOST}:${inboundPort}`,
    run.o.clock.nowMs() - t,
  );
}

function start(run: Run, name: string, args: readonly string[]): Child {
  const logFile = path.join(run.layout.logDir, `${name.replace(/ /g, '-')}.log`);
  return run.supervisor.start({ name, argv: [run.o.bins.node, ...args], logFile, env: run.o.env });
}

/** Polls `check` until it holds; a timeout becomes ComponentFailed, so the child's log is shown. */
async function waitUp(
  run: Run,
  child: Child,
  state: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const { clock } = run.o;
  const poll = pollUntil(check, {
    clock,
    timeoutMs,
    intervalMs: POLL_INTERVAL_MS,
    what: `the ${child.name} to be ${state}`,
    signal: run.supervisor.halted,
  });
  try {
    await run.supervisor.guard(poll);
  } catch (err) {
    if (isSigilError(err, 'ERR_UNAVAILABLE') && err.reason === 'not-ready')
      throw new ComponentFailed(child, err.message);
    throw err;
  } finally {
    // The poll ends by itself once halted; its rejection then is already handled here.
    poll.catch(() => {});
  }
}

function summary(run: Run): MeshSummary {
  const { o, layout, ports } = run;
  const url = (port: number, p: string) => `http://${MESH_HOST}:${port}${p}`;
  return {
    dir: shown(o, layout.root),
    ports: { first: o.basePort, last: o.basePort + PORT_COUNT - 1 },
    urls: {
      allowed: url(ports.frontendOutbound, '/hello'),
      denied: url(ports.backendOutbound, '/hello'),
      frontendMetrics: url(ports.frontendAdmin, '/metrics'),
      backendMetrics: url(ports.backendAdmin, '/metrics'),
      serverMetrics: url(ports.serverMetrics, '/metrics'),
      agentMetrics: url(ports.agentMetrics, '/metrics'),
    },
    commands: {
      // Absolute socket paths: `--socket-path` takes a path or a unix:// URI, and URIs are absolute.
      watch: `${shown(o, o.bins.agent)} api watch --socket-path ${layout.workloadApiSocket}`,
      entries: `${shown(o, o.bins.server)} entry show --admin-socket ${layout.serverAdminSocket}`,
    },
    sockets: {
      serverAdmin: layout.serverAdminSocket,
      agentAdmin: layout.agentAdminSocket,
      workloadApi: layout.workloadApiSocket,
    },
    configDir: shown(o, layout.configDir),
    logDir: shown(o, layout.logDir),
    pids: run.supervisor.pids(),
  };
}

/** After the stop: anything of ours still there (a port still bound, a socket file). */
async function whatIsLeft(run: Run): Promise<string[]> {
  const left: string[] = [];
  for (const port of Object.values(run.ports))
    if (!(await isPortFree(port))) left.push(`port ${port} is still in use`);
  for (const socket of [
    run.layout.serverAdminSocket,
    run.layout.agentAdminSocket,
    run.layout.workloadApiSocket,
  ])
    if (existsSync(socket)) left.push(`socket ${socket} is still there`);
  return left;
}

/** A path as the user should type it: relative when under the working directory. */
function shown(o: MeshOptions, target: string): string {
  const relative = path.relative(o.cwd, target);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? target : relative;
}

/** Removes a socket a stopped child left (only sockets: anything else there is not ours). */
function removeSocket(socket: string): void {
  try {
    if (lstatSync(socket).isSocket()) rmSync(socket, { force: true });
  } catch {
    // Already gone, which is what clean daemons leave.
  }
}
