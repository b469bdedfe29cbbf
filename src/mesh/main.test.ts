import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockDataDir, procProcessTable } from '../spiffe/data-dir-lock.js';
import { main } from './main.js';

let dir: string;
let held: Server | undefined;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-mesh-cli-'));
});
afterEach(async () => {
  await new Promise((resolve) => (held ? held.close(resolve) : resolve(undefined)));
  held = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (c: string) => (stdout += c) },
    stderr: { write: (c: string) => (stderr += c) },
    env: process.env,
    cwd: dir,
  });
  return { code, stdout, stderr };
}

describe('sigil-mesh CLI', () => {
  it('prints its help with the flags and exit codes', async () => {
    const res = await cli('up', '--help');
    expect(res.code).toBe(0);
    for (const text of ['--dir DIR', '--base-port N', '--output text|json', 'Exit codes'])
      expect(res.stdout).toContain(text);
  });

  it.each([
    [['upp'], 'sigil-mesh: unknown command "upp"; did you mean "up"?'],
    [[], 'sigil-mesh: missing command'],
    [['up', '--base-prot', '7500'], 'sigil-mesh up: unknown flag --base-prot; did you mean --base-port?'],
    [['up', '--dir'], 'sigil-mesh up: --dir needs a value'],
    [['up', '--output', 'yaml'], 'sigil-mesh up: --output must be text or json (got "yaml")'],
    [
      ['up', '--base-port', '80'],
      'sigil-mesh up: --base-port must be a whole number from 1024 to 65525 (got "80")',
    ],
    [['up', '--base-port', '65530'], 'got "65530"'],
  ])('refuses %j with exit 2', async (argv, message) => {
    const res = await cli(...argv);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(message);
  });

  it('names a port in use, what it was for and the flag to change it, in one line, and starts nothing', async () => {
    held = createServer();
    await new Promise<void>((resolve) => held!.listen(0, '127.0.0.1', () => resolve()));
    const port = (held.address() as { port: number }).port;
    const res = await cli('up', '--dir', '.sigil', '--base-port', String(port));
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `✗ port ${port} (the server's agent API) is in use; start with --base-port N to use ports N to N+10 instead of ${port} to ${port + 10}\n`,
    );
    expect(res.stdout).toBe('');
    const meshDir = path.join(dir, '.sigil', 'mesh');
    expect(readdirSync(path.join(meshDir, 'logs'))).toEqual([]);
    expect(existsSync(path.join(meshDir, 'run.json'))).toBe(false);
  });

  it('refuses a mesh directory another sigil-mesh is using', async () => {
    mkdirSync(path.join(dir, 'm', 'mesh'), { recursive: true });
    // Claimed in the name of a live process other than us: our parent (the test runner) will do.
    const lock = lockDataDir(path.join(dir, 'm', 'mesh'), {
      what: 'sigil-mesh',
      processes: procProcessTable('/proc', process.ppid),
    });
    try {
      const res = await cli('up', '--dir', 'm');
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(
        `is in use by sigil-mesh pid ${process.ppid}; stop it or use another --dir`,
      );
    } finally {
      lock.release();
    }
  });
});
