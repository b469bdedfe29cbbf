// Runs README.md's agent walkthrough and admin REST example as written, read from the README itself
// so the test breaks when the README drifts. Each runs with bash in a fresh directory standing for a
// fresh checkout (only `bin/` linked in), with its own HOME, TMPDIR and an empty XDG_RUNTIME_DIR, so
// the daemons create every socket directory themselves. Two adjustments, both made here and nowhere
// in the README: the ports become free ones (the machine runs other tests), and a command the README
// says "runs until Ctrl-C" gets a Ctrl-C (SIGINT) after a few seconds.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/agent-harness.js';
import { REPO_ROOT as REPO } from '../support/harness.js';

const README = readFileSync(path.join(REPO, 'README.md'), 'utf8');
const RUN_LIMIT_MS = 90_000;
/** How long a "runs until Ctrl-C" command runs before it gets its Ctrl-C. */
const UNTIL_CTRL_C_S = 5;

/** The ```sh blocks of the README section whose `## ` heading is `heading`, in order. */
function shellBlocks(heading: string): string[] {
  const start = README.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "## ${heading}" section`);
  const end = README.indexOf('\n## ', start + 1);
  const section = README.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The script as bash will run it: the README's commands, with free ports and Ctrl-C after a while. */
async function adjust(blocks: readonly string[]): Promise<string> {
  const ports = new Map([
    ['127.0.0.1:8081', `127.0.0.1:${await freePort()}`],
    ['127.0.0.1:8082', `127.0.0.1:${await freePort()}`],
  ]);
  let script = blocks.join('\n');
  for (const [from, to] of ports) script = script.replaceAll(from, to);
  // A continued line is one command: join them before deciding which command runs until Ctrl-C.
  script = script.replace(/\\\n\s*/g, ' ');
  const lines = script.split('\n').map((line) => {
    if (!/#.*runs until Ctrl-C/.test(line)) return line;
    const command = line.replace(/\s+#.*$/, '');
    return `{ timeout -s INT ${UNTIL_CTRL_C_S} ${command} || [ $? = 124 ]; }`;
  });
  return ['set -euo pipefail', ...lines].join('\n');
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly pgid: number;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function isGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    // ESRCH: every process of the group has exited.
    return false;
  }
}

async function waitForGroupExit(pgid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (!isGroupAlive(pgid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return !isGroupAlive(pgid);
}

/**
 * Run as root, the daemons put their sockets under /run/sigil-server and /run/sigil-agent whatever
 * XDG_RUNTIME_DIR says (runtime-dir.ts); those the test made are removed after it.
 */
const SYSTEM_RUNTIME_DIRS = ['/run/sigil-server', '/run/sigil-agent'];

/** A fresh "checkout" with its own HOME, TMPDIR and XDG_RUNTIME_DIR; removed after the test. */
function freshMachine(): { cwd: string; env: NodeJS.ProcessEnv } {
  const root = mkdtempSync(path.join(tmpdir(), 'sigil-readme-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const made = SYSTEM_RUNTIME_DIRS.filter((dir) => !existsSync(dir));
  cleanups.push(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
  const cwd = path.join(root, 'checkout');
  const home = path.join(root, 'home');
  const runtime = path.join(root, 'run');
  for (const dir of [cwd, home, path.join(root, 'tmp')]) mkdirSync(dir);
  mkdirSync(runtime, { mode: 0o700 });
  symlinkSync(path.join(REPO, 'bin'), path.join(cwd, 'bin'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    TMPDIR: path.join(root, 'tmp'),
    XDG_RUNTIME_DIR: runtime,
    LANG: 'C.UTF-8',
  };
  return { cwd, env };
}

/** Runs the script with bash in its own process group, so every process it leaves behind can be found. */
function runBash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const child = spawn('bash', ['-c', script], {
    cwd,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pgid = child.pid!;
  cleanups.push(async () => {
    if (!isGroupAlive(pgid)) return;
    process.kill(-pgid, 'SIGTERM');
    if (!(await waitForGroupExit(pgid, 5_000))) process.kill(-pgid, 'SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => process.kill(-pgid, 'SIGKILL'), RUN_LIMIT_MS);
    // 'close', not 'exit': the daemons the script starts share its stdout only until they
    // redirect, which the README does, so the pipes close when bash is done.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, pgid });
    });
  });
}

function explainFailure(run: Run, cwd: string): string {
  const logs = ['server.log', 'agent.log']
    .map((f) => path.join(cwd, '.sigil', f))
    .filter((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        // Not written by this walkthrough.
        return false;
      }
    })
    .map((f) => `--- ${path.basename(f)}\n${readFileSync(f, 'utf8').slice(-3000)}`);
  return [`exit ${run.code}`, `--- stdout\n${run.stdout}`, `--- stderr\n${run.stderr}`, ...logs].join('\n');
}

describe("README's walkthroughs run as written on a fresh machine", () => {
  it('the agent walkthrough: SVIDs written under .sigil/, watch prints, the agent explained', async () => {
    const blocks = shellBlocks('The agent');
    expect(blocks.length, 'the agent section has its walkthrough blocks').toBeGreaterThanOrEqual(3);
    const { cwd, env } = freshMachine();
    const run = await runBash(await adjust(blocks), cwd, env);
    expect(run.code, explainFailure(run, cwd)).toBe(0);

    // The workload's SVID, key and bundle, for the entry of this uid.
    const svids = path.join(cwd, '.sigil', 'svids');
    expect(readdirSync(svids).sort()).toEqual(['bundle.0.pem', 'svid.0.key', 'svid.0.pem']);
    expect(statSync(path.join(svids, 'svid.0.key')).mode & 0o777).toBe(0o600);
    const leaf = new X509Certificate(readFileSync(path.join(svids, 'svid.0.pem')));
    expect(leaf.subjectAltName).toBe('URI:spiffe://example.org/web');
    // api watch printed the SVID before its Ctrl-C; the explain named the agent and the entry.
    expect(run.stdout).toMatch(/update: spiffe:\/\/example\.org\/web serial=/);
    expect(run.stdout).toMatch(/Agent is healthy: spiffe:\/\/example\.org\/sigil\/agent\/join_token\//);
    expect(run.stdout).toContain('spiffe://example.org/web');
    expect(run.stdout).toContain('spiffe://example.org/node1');
    // Nothing outside .sigil/ (bin/ is the checkout's own).
    expect(readdirSync(cwd).sort()).toEqual(['.sigil', 'bin']);
    // The README's own `kill` stops both daemons.
    expect(
      await waitForGroupExit(run.pgid, 10_000),
      'server and agent exit after the README kills them',
    ).toBe(true);
  }, 120_000);

  it('the admin REST example: the server started with --admin-bind answers curl with 200 and the entries', async () => {
    const blocks = shellBlocks('Admin REST API');
    expect(blocks.join('\n')).toContain('--admin-bind');
    const { cwd, env } = freshMachine();
    const run = await runBash(await adjust(blocks), cwd, env);
    expect(run.code, explainFailure(run, cwd)).toBe(0);

    const body = JSON.parse(run.stdout.slice(run.stdout.indexOf('{"entries"')).split('\n')[0]!) as {
      entries: { spiffe_id: string; admin: boolean }[];
    };
    expect(body.entries).toContainEqual(
      expect.objectContaining({ spiffe_id: 'spiffe://example.org/ops', admin: true }),
    );
    expect(statSync(path.join(cwd, '.sigil', 'ops', 'svid.key')).mode & 0o777).toBe(0o600);
    expect(readdirSync(cwd).sort()).toEqual(['.sigil', 'bin']);
    expect(await waitForGroupExit(run.pgid, 10_000), 'the server exits after the README kills it').toBe(true);
  }, 120_000);
});
