import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type PeerProcess, readPeerProcess, readStartTime, startTimeGuard } from './peer-cred.js';

const NOBODY = 65534;
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigil-peer-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Listens on a fresh socket; spawns a node process as `uid` that connects and waits to be killed. */
async function acceptFromChild(
  uid: number,
  gid: number,
  usePidfd: boolean,
): Promise<{ peer: PeerProcess; child: ChildProcess }> {
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const socketPath = path.join(dir, 's.sock');
  let onPeer: (p: PeerProcess) => void = () => {};
  const accepted = new Promise<PeerProcess>((resolve) => {
    onPeer = resolve;
  });
  const server: Server = createServer((socket: Socket) => {
    onPeer(readPeerProcess(socket, { usePidfd }));
    cleanups.push(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  chmodSync(socketPath, 0o777);
  cleanups.push(() => server.close());
  const child = spawn(
    process.execPath,
    ['-e', `require('net').connect(process.argv[1]); setInterval(() => {}, 1000)`, socketPath],
    { uid, gid, stdio: 'ignore', cwd: '/' },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  const peer = await accepted;
  cleanups.push(() => peer.release());
  return { peer, child };
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > 10_000) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function killAndWait(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('readPeerProcess', () => {
  it('reports the pid, uid and gid of the connecting process as the kernel saw them, and its executable', async () => {
    const { dev, ino } = statSync(process.execPath, { bigint: true });
    const exe = { path: realpathSync(process.execPath), dev, ino };
    const { peer, child } = await acceptFromChild(NOBODY, NOBODY, true);
    expect(peer.cred).toEqual({ pid: child.pid, uid: NOBODY, gid: NOBODY, exe });
    const daemon = await acceptFromChild(1, 1, true);
    expect(daemon.peer.cred).toEqual({ pid: daemon.child.pid, uid: 1, gid: 1, exe });
    expect(peer.change()).toBeUndefined();
  });

  it('reports an exec after the connection was accepted, and an exit', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 's.sock');
    let onPeer: (p: PeerProcess) => void = () => {};
    const accepted = new Promise<PeerProcess>((resolve) => {
      onPeer = resolve;
    });
    const server = createServer((socket) => {
      onPeer(readPeerProcess(socket));
      cleanups.push(() => socket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    cleanups.push(() => server.close());
    // Connects, keeps the socket across exec, and execs sleep once told to (a line on stdin).
    const script = [
      'import os, socket, sys',
      's = socket.socket(socket.AF_UNIX)',
      's.connect(sys.argv[1])',
      's.set_inheritable(True)',
      'sys.stdin.readline()',
      'os.execv("/bin/sleep", ["sleep", "30"])',
    ].join('\n');
    const child = spawn('python3', ['-c', script, socketPath], { stdio: ['pipe', 'ignore', 'inherit'] });
    cleanups.push(() => child.kill('SIGKILL'));
    const peer = await accepted;
    cleanups.push(() => peer.release());
    expect(peer.cred.exe).toMatchObject({ path: expect.stringMatching(/python/) });
    expect(peer.change()).toBeUndefined();
    child.stdin!.write('exec\n');
    await waitUntil(() => peer.change() !== undefined);
    expect(peer.change()).toEqual({
      kind: 'exec',
      detail: expect.stringMatching(
        /^process \d+ has exec'd \/(usr\/)?bin\/sleep \(device .*since it connected running .*python/,
      ),
    });
    await killAndWait(child);
    expect(peer.change()).toMatchObject({ kind: 'exited' });
  });

  it('guards with a pidfd on this kernel: same process while alive, not after it exits', async () => {
    const { peer, child } = await acceptFromChild(NOBODY, NOBODY, true);
    // Kernels before 6.5 lack SO_PEERPIDFD; this machine's kernel has it, and the fallback is tested below.
    expect(peer.guard).toBe('pidfd');
    expect(peer.isSameProcess()).toBe(true);
    await killAndWait(child);
    expect(peer.isSameProcess()).toBe(false);
  });

  it('falls back to the start time when pidfds are not used', async () => {
    const { peer, child } = await acceptFromChild(NOBODY, NOBODY, false);
    expect(peer.guard).toBe('starttime');
    expect(peer.isSameProcess()).toBe(true);
    await killAndWait(child);
    expect(peer.isSameProcess()).toBe(false);
  });
});

describe('startTimeGuard (PID reuse) with a fake /proc', () => {
  function writeStat(procRoot: string, pid: number, comm: string, startTime: string) {
    mkdirSync(path.join(procRoot, String(pid)), { recursive: true });
    // Field 3 is the state, fields 4..21 filler, field 22 the start time, then a few more.
    const filler = Array.from({ length: 18 }, (_, i) => String(i + 4)).join(' ');
    writeFileSync(
      path.join(procRoot, String(pid), 'stat'),
      `${pid} (${comm}) S ${filler} ${startTime} 100 200\n`,
    );
  }

  it('reads field 22 even when the command name holds spaces and parentheses', () => {
    const procRoot = tempDir();
    writeStat(procRoot, 42, 'evil) (name', '987654');
    expect(readStartTime(procRoot, 42)).toBe('987654');
    expect(readStartTime(procRoot, 43)).toBeUndefined();
  });

  it('says "same process" until the pid shows another start time or disappears', () => {
    const procRoot = tempDir();
    writeStat(procRoot, 42, 'web', '1000');
    const guard = startTimeGuard({ pid: 42, uid: 0, gid: 0 }, procRoot);
    expect(guard.isSameProcess()).toBe(true);
    writeStat(procRoot, 42, 'web', '2000'); // the pid was reused by a newer process
    expect(guard.isSameProcess()).toBe(false);
    writeStat(procRoot, 42, 'web', '1000');
    expect(guard.isSameProcess()).toBe(true);
    rmSync(path.join(procRoot, '42'), { recursive: true });
    expect(guard.isSameProcess()).toBe(false);
  });

  it('reports a /proc read failure as what it is, not as an exit (EMFILE once read as "exited")', () => {
    const procRoot = tempDir();
    mkdirSync(path.join(procRoot, '42', 'stat'), { recursive: true }); // reading it fails with EISDIR
    expect(() => readStartTime(procRoot, 42)).toThrow(
      expect.objectContaining({
        reason: 'proc',
        message: expect.stringContaining('cannot read /proc/42/stat: EISDIR'),
      }),
    );
  });

  it('refuses a process that is already gone at accept', () => {
    expect(() => startTimeGuard({ pid: 42, uid: 0, gid: 0 }, tempDir())).toThrow(
      expect.objectContaining({ code: 'ERR_UNAUTHENTICATED', reason: 'exited' }),
    );
  });
});
