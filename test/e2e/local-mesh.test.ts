// The README's main command, exactly as written: `npm start` brings up the local mesh. It runs in a
// fresh temp directory holding links to this checkout's package.json and bin/ (npm runs a script in
// the directory of the package.json it found, so the mesh's .sigil lands in the temp directory and a
// developer's own .sigil in the checkout is never touched). The mesh takes its default ports
// (7400-7410), outside the ephemeral range that every other test's port-0 listeners draw from.
// Checked: the allowed call carries the right peer ID, the denied one gets 403, Ctrl-C (SIGINT to
// the process group, as a terminal sends it) leaves no process, socket or listening port; a second
// start reuses the data and is faster; a component that dies is named with its log, and the rest stop.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/agent-harness.js';
import { REPO_ROOT } from '../support/harness.js';

const PORTS = Array.from({ length: 11 }, (_, i) => 7400 + i);
const START_TIMEOUT_MS = 120_000;

let dir: string;
/** Every pid any run recorded, and every npm started: nothing may outlive the test. */
const seenPids = new Set<number>();
const npms: ChildProcess[] = [];

interface NpmStart {
  readonly child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function npmStart(): NpmStart {
  // Its own process group, so the test can send SIGINT to all of it the way a terminal does.
  const child = spawn('npm', ['start'], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  npms.push(child);
  let output = '';
  child.stdout!.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Waits for "Ctrl-C to stop." and returns the mesh's recorded components by name. */
async function untilUp(run: NpmStart): Promise<Record<string, number>> {
  let done = false;
  void run.exited.then(() => {
    done = true;
  });
  await waitFor(
    () => run.output().includes('Ctrl-C to stop.') || done,
    START_TIMEOUT_MS,
    () => `npm start not up in time:\n${run.output()}`,
  );
  expect(run.output()).toContain('Ctrl-C to stop.');
  const record = JSON.parse(readFileSync(path.join(dir, '.sigil', 'mesh', 'run.json'), 'utf8')) as {
    processes: Array<{ name: string; pid: number }>;
  };
  for (const p of record.processes) seenPids.add(p.pid);
  return Object.fromEntries(record.processes.map((p) => [p.name, p.pid]));
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/**
 * The time of the steps reuse saves: the join token, the entries and the agent's attestation. The
 * whole start is mostly six node processes booting, which swings by seconds with the machine's
 * load (this suite runs two files at a time), so the total would make a flaky comparison.
 */
function setupSeconds(output: string): number {
  return ['join token', 'entries', 'agent']
    .map((step) => Number(new RegExp(`✓ ${step} +([\\d.]+)s  `).exec(output)![1]))
    .reduce((a, b) => a + b, 0);
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const isPortFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** Socket files anywhere under the mesh directory. */
function socketsUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((name) => path.join(root, name))
    .filter((file) => lstatSync(file).isSocket());
}

/** Nothing of a run left: its components (each in a process group of its own) nor npm's group (npm, sh, sigil-mesh). */
async function expectNothingLeft(pids: readonly number[], npmGroup: number): Promise<void> {
  for (const pid of pids) expect(isAlive(pid), `pid ${pid} still running`).toBe(false);
  // npm may end before its shell is reaped: give init a moment to collect the orphan.
  await waitFor(
    () => !isAlive(-npmGroup),
    5_000,
    () => `a process of npm's group ${npmGroup} still running`,
  );
  for (const port of PORTS) expect(await isPortFree(port), `port ${port} still in use`).toBe(true);
  expect(socketsUnder(path.join(dir, '.sigil', 'mesh'))).toEqual([]);
  expect(existsSync(path.join(dir, '.sigil', 'mesh', 'run.json'))).toBe(false);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-local-mesh-'));
  symlinkSync(path.join(REPO_ROOT, 'package.json'), path.join(dir, 'package.json'));
  symlinkSync(path.join(REPO_ROOT, 'bin'), path.join(dir, 'bin'));
  for (const port of PORTS)
    expect(await isPortFree(port), `port ${port} is in use: is a local mesh (npm start) running?`).toBe(true);
});

afterAll(async () => {
  for (const npm of npms) {
    try {
      process.kill(-npm.pid!, 'SIGKILL');
    } catch {
      // Already gone: the normal case.
    }
  }
  for (const pid of seenPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('npm start: the local mesh', () => {
  let firstSetupSeconds = 0;

  it('starts, lets frontend call backend with its own ID, refuses the reverse, and Ctrl-C leaves nothing', async () => {
    const run = npmStart();
    const pids = await untilUp(run);
    const out = run.output();
    for (const component of [
      'server',
      'join token',
      'entries',
      'agent',
      'frontend sidecar',
      'backend sidecar',
    ])
      expect(out).toMatch(new RegExp(`✓ ${component} +\\d+\\.\\ds  \\S.*\\n`));
    firstSetupSeconds = setupSeconds(out);

    // The two curls the output suggests, as printed.
    const allowed = /curl -s (http:\/\/\S+\/hello)/.exec(out)![1]!;
    const denied = /curl -si (http:\/\/\S+\/hello)/.exec(out)![1]!;
    const ok = await get(allowed);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({
      service: 'backend',
      peer_id: 'spiffe://sigil.local/frontend',
    });
    const refused = await get(denied);
    expect(refused.status).toBe(403);
    for (const command of ['api watch --socket-path', 'entry show --admin-socket', '/metrics'])
      expect(out).toContain(command);
    // Every metrics URL printed answers with that component's own series.
    const metricsUrls = [...out.matchAll(/(http:\/\/127\.0\.0\.1:\d+\/metrics)/g)].map((m) => m[1]!);
    expect(new Set(metricsUrls).size).toBe(4);
    const scraped = await Promise.all([...new Set(metricsUrls)].map((u) => get(u)));
    for (const prefix of ['sigil_proxy_', 'sigil_server_', 'sigil_agent_'])
      expect(scraped.some((r) => r.status === 200 && r.body.includes(prefix))).toBe(true);

    process.kill(-run.child.pid!, 'SIGINT');
    // npm itself ends by the SIGINT it got (as in a terminal), after its script has ended.
    expect(await run.exited).toEqual({ code: null, signal: 'SIGINT' });
    expect(run.output()).toContain('Stopping (SIGINT)');
    expect(run.output()).toMatch(
      /✓ stopped frontend sidecar, backend sidecar, agent, server, frontend app, backend app in [\d.]+s; no process, socket or port left\n/,
    );
    await expectNothingLeft(Object.values(pids), run.child.pid!);
  });

  it('starts again from the same data, faster, and names a component that dies, with its log', async () => {
    const run = npmStart();
    const pids = await untilUp(run);
    const out = run.output();
    expect(out).toContain('CA and entries reused');
    expect(out).toContain('not needed: the agent kept its SVID');
    expect(out).toContain('/frontend, /backend already registered');
    expect(out).not.toContain('new self-signed CA');
    expect(setupSeconds(out)).toBeLessThan(firstSetupSeconds);
    expect((await get('http://127.0.0.1:7401/hello')).status).toBe(200);

    process.kill(pids['backend sidecar']!, 'SIGKILL');
    const exit = await run.exited;
    expect(exit.code).not.toBe(0);
    expect(run.output()).toContain('✗ backend sidecar: exited unexpectedly (signal SIGKILL)');
    expect(run.output()).toContain('last lines of .sigil/mesh/logs/backend-sidecar.log:');
    expect(run.output()).toContain('"msg":"Sigil proxy started"');
    await expectNothingLeft(Object.values(pids), run.child.pid!);
  });
});
