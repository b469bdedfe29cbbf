// runMesh stopped while it is still starting: the exit code a Ctrl-C gives (npm hides it behind its
// own signal exit in the e2e test), and the cleanup of a partly started mesh.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../spiffe/clock.js';
import type { MeshSummary, Reporter } from './reporter.js';
import { runMesh } from './up.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-mesh-up-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A block of 9 free ports from the ephemeral range (checked, then released). */
async function freeBlock(): Promise<number> {
  for (;;) {
    const base = 40_000 + Math.floor(Math.random() * 20_000);
    let free = true;
    for (let port = base; port < base + 9 && free; port++) {
      free = await new Promise<boolean>((resolve) => {
        const s = createServer();
        s.once('error', () => resolve(false));
        s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
      });
    }
    if (free) return base;
  }
}

describe('runMesh', () => {
  it('stops what it started and exits 0 when a stop is asked for during startup', async () => {
    const controller = new AbortController();
    const events: string[] = [];
    let stopped: { names: readonly string[]; leftovers: readonly string[] } | undefined;
    const reporter: Reporter = {
      note: (m) => events.push(`note ${m}`),
      starting: () => events.push('starting'),
      up: (component) => {
        events.push(`up ${component}`);
        // Ctrl-C right after the server is up, while the mesh is still registering.
        if (component === 'server') controller.abort('SIGINT');
      },
      ready: (_s: MeshSummary) => events.push('ready'),
      stopping: (reason) => events.push(`stopping ${reason}`),
      stopped: (names, _ms, leftovers) => {
        stopped = { names, leftovers };
      },
      failed: (message) => events.push(`failed ${message}`),
    };
    const code = await runMesh({
      dir: '.sigil',
      cwd: dir,
      basePort: await freeBlock(),
      uid: process.getuid!(),
      clock: systemClock,
      env: process.env,
      bins: {
        node: process.execPath,
        server: path.join(REPO, 'bin', 'sigil-server'),
        agent: path.join(REPO, 'bin', 'sigil-agent'),
        proxy: path.join(REPO, 'bin', 'sigil-proxy'),
        demoApp: path.join(REPO, 'dist', 'src', 'mesh', 'demo-app-main.js'),
      },
      reporter,
      signal: controller.signal,
    });
    expect(code).toBe(0);
    // The demo apps start beside the server; nothing after it started.
    expect(events.filter((e) => !e.endsWith(' app'))).toEqual(['starting', 'up server', 'stopping SIGINT']);
    expect(stopped).toEqual({ names: ['server', 'frontend app', 'backend app'], leftovers: [] });
    const mesh = path.join(dir, '.sigil', 'mesh');
    expect(existsSync(path.join(mesh, 'sockets', 'server', 'admin.sock'))).toBe(false);
    expect(existsSync(path.join(mesh, 'run.json'))).toBe(false);
    // The data stays for the next run.
    expect(existsSync(path.join(mesh, 'server', 'datastore.sqlite3'))).toBe(true);
  }, 60_000);
});
