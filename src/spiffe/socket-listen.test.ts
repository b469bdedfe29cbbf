import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  claimSocketPath,
  listenOnSocket,
  MAX_SOCKET_PATH_BYTES,
  removeStaleSocket,
  type SetUmask,
} from './socket-listen.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function socketIn(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigil-listen-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 's.sock');
}

function serve(): Server {
  const server = createServer();
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

/** Runs `body` under a process umask of `mask`, restoring the old one after. */
async function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await body();
  } finally {
    process.umask(previous);
  }
}

describe('listenOnSocket', () => {
  it('binds an owner-only socket that is never wider than 0600, even under umask 0', async () => {
    const socketPath = socketIn();
    const server = serve();
    let modeAtBind = -1;
    // Registered before listenOnSocket's own callback, so it sees the file as bind() made it, before chmod.
    server.once('listening', () => {
      modeAtBind = statSync(socketPath).mode & 0o777;
    });
    await withUmask(0, () => listenOnSocket(server, socketPath, 0o600));
    expect(modeAtBind).toBe(0o600);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(socketPath).isSocket()).toBe(true);
  });

  it('sets a public socket to exactly 0777 whatever the umask took, and restores the umask', async () => {
    const socketPath = socketIn();
    const before = process.umask(0o027);
    try {
      await listenOnSocket(serve(), socketPath, 0o777);
      expect(process.umask(0o027)).toBe(0o027);
    } finally {
      process.umask(before);
    }
    expect(statSync(socketPath).mode & 0o777).toBe(0o777);
  });

  it('only ever makes the umask stricter than it was, and puts it back', async () => {
    const calls: number[] = [];
    let current = 0o002;
    const setUmask: SetUmask = (mask) => {
      calls.push(mask);
      const previous = current;
      current = mask;
      return previous;
    };
    await listenOnSocket(serve(), socketIn(), 0o600, { setUmask });
    expect(calls).toEqual([0o777, 0o177, 0o002]);
    expect(current).toBe(0o002);
  });

  it('rejects when the path is taken, and leaves the umask as it was', async () => {
    const socketPath = socketIn();
    await listenOnSocket(serve(), socketPath, 0o600);
    const before = process.umask(0o022);
    try {
      await expect(
        listenOnSocket(serve(), socketPath, 0o600, { field: 'admin_socket' }),
      ).rejects.toMatchObject({
        code: 'ERR_CONFIG_INVALID',
        message: `admin_socket: cannot listen on ${socketPath}: EADDRINUSE; another process listens there; stop it or choose another path with admin_socket`,
        cause: { code: 'EADDRINUSE' },
      });
      expect(process.umask(0o022)).toBe(0o022);
    } finally {
      process.umask(before);
    }
  });
});

/** A socket file nobody listens on, as a crashed process leaves it: bound, renamed away, then closed. */
async function staleSocketAt(socketPath: string): Promise<void> {
  const server = createServer();
  const live = `${socketPath}.live`;
  await new Promise<void>((resolve) => server.listen(live, resolve));
  renameSync(live, socketPath);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('removeStaleSocket', () => {
  it('does nothing when the path is free', async () => {
    await expect(removeStaleSocket(socketIn(), 'socket_path')).resolves.toBeUndefined();
  });

  it('removes a socket left by a crash, so listen can bind again', async () => {
    const socketPath = socketIn();
    await staleSocketAt(socketPath);
    expect(lstatSync(socketPath).isSocket()).toBe(true);
    await removeStaleSocket(socketPath, 'socket_path');
    expect(existsSync(socketPath)).toBe(false);
    await listenOnSocket(serve(), socketPath, 0o600);
  });

  it('refuses a socket some process still serves, and leaves it serving', async () => {
    const socketPath = socketIn();
    await listenOnSocket(serve(), socketPath, 0o600);
    await expect(removeStaleSocket(socketPath, 'socket_path')).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      field: 'socket_path',
      reason: 'socket-in-use',
      message: `socket_path: ${socketPath} is served by a running process; stop it or choose another path`,
    });
    expect(lstatSync(socketPath).isSocket()).toBe(true);
    await new Promise<void>((resolve, reject) =>
      createConnection(socketPath)
        .once('connect', function (this: Socket) {
          this.destroy();
          resolve();
        })
        .once('error', reject),
    );
  });

  it.each([
    ['a regular file', (p: string) => writeFileSync(p, 'keep me')],
    ['a directory', (p: string) => mkdirSync(p)],
  ])('refuses %s, naming the setting, and leaves it in place', async (_name, make) => {
    const socketPath = socketIn();
    make(socketPath);
    await expect(removeStaleSocket(socketPath, 'admin_socket')).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      field: 'admin_socket',
      message: `admin_socket: ${JSON.stringify(socketPath)} exists and is not a socket; refusing to replace it`,
    });
    expect(existsSync(socketPath)).toBe(true);
  });
});

describe('claimSocketPath', () => {
  it('leaves a free path free after a trial bind, and removes a stale socket', async () => {
    const free = socketIn();
    await claimSocketPath(free, 'socket_path');
    expect(existsSync(free)).toBe(false);
    const stale = socketIn();
    await staleSocketAt(stale);
    await claimSocketPath(stale, 'socket_path');
    expect(existsSync(stale)).toBe(false);
  });

  it('refuses a live socket without touching it', async () => {
    const socketPath = socketIn();
    await listenOnSocket(serve(), socketPath, 0o600);
    await expect(claimSocketPath(socketPath, 'admin_socket')).rejects.toMatchObject({
      reason: 'socket-in-use',
    });
    expect(lstatSync(socketPath).isSocket()).toBe(true);
  });

  it('refuses a path too long for sun_path instead of binding a truncated one', async () => {
    const dir = path.dirname(socketIn());
    const socketPath = path.join(dir, `${'s'.repeat(MAX_SOCKET_PATH_BYTES - dir.length)}.sock`);
    await expect(claimSocketPath(socketPath, 'socket_path')).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      reason: 'socket-path-length',
      message: expect.stringMatching(
        /^socket_path: ".*" is \d+ bytes long, more than a Unix socket path may be \(107\); choose a shorter path$/,
      ),
    });
    await expect(listenOnSocket(serve(), socketPath, 0o600)).rejects.toMatchObject({
      reason: 'socket-path-length',
    });
  });

  it('turns a failed bind into one line naming the path and what to do', async () => {
    const dir = path.dirname(socketIn());
    const missing = path.join(dir, 'missing', 's.sock');
    await expect(claimSocketPath(missing, 'socket_path')).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      reason: 'listen',
      message: `socket_path: cannot listen on ${missing}: its directory ${path.dirname(missing)} does not exist; create it or choose another path with socket_path`,
    });
  });
});
