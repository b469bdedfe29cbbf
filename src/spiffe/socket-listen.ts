// Binds a server to a Unix socket so that the socket file never exists with more permissions than
// its final mode, not even between bind() and chmod(): the directory's checks (socket-dir.ts) keep
// others from swapping the file, this keeps them from connecting to it early. A socket already at
// the path is removed only when nobody answers on it (removeStaleSocket): a live one belongs to a
// running daemon and is never taken over; anything else there is refused, never deleted. Every
// failure is a SigilError naming the path and the way out, so daemons print one line, not a stack.
import { chmodSync, existsSync } from 'node:fs';
import { lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import path from 'node:path';
import { quote, SigilError } from './errors.js';

/** Sets the process umask and returns the previous one, as process.umask(mask) does. */
export type SetUmask = (mask: number) => number;

const setProcessUmask: SetUmask = (mask) => process.umask(mask);

/**
 * Linux's sun_path holds 108 bytes with the terminating NUL. Node does not refuse a longer path: it
 * truncates it and binds at the shorter name, so the chmod and every client then miss the socket.
 */
export const MAX_SOCKET_PATH_BYTES = 107;

/** Throws ERR_CONFIG_INVALID when `socketPath` does not fit in sun_path. */
export function checkSocketPathLength(socketPath: string, field: string): void {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `${field}: ${quote(socketPath, 200)} is ${bytes} bytes long, more than a Unix socket path may be (${MAX_SOCKET_PATH_BYTES}); choose a shorter path`,
      { field, reason: 'socket-path-length' },
    );
  }
}

/**
 * Removes the socket file a crashed process left at `socketPath`, which would make listen() fail with
 * EADDRINUSE. It connects first: when something answers, the socket is a running daemon's and is
 * refused (ERR_CONFIG_INVALID, reason `socket-in-use`); only a connect refused with ECONNREFUSED
 * proves it stale. Anything other than a socket there (a regular file, a directory) is not ours to
 * delete: refused as a config error on `field`.
 */
export async function removeStaleSocket(socketPath: string, field: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(socketPath)).isSocket();
  } catch {
    // Nothing there: the common case.
    return;
  }
  if (!isSocket) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `${field}: ${quote(socketPath)} exists and is not a socket; refusing to replace it`,
      { field },
    );
  }
  const probe = await probeSocket(socketPath);
  if (probe === 'gone') return;
  if (probe === 'answers') {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `${field}: ${socketPath} is served by a running process; stop it or choose another path`,
      { field, reason: 'socket-in-use' },
    );
  }
  if (probe !== 'stale') {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `${field}: a socket exists at ${socketPath} and cannot be probed (${probe}); if no process serves it, remove it, or choose another path`,
      { field, reason: 'socket-unprobed' },
    );
  }
  await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw listenError(socketPath, field, err);
  });
}

/**
 * What a listener checks before the daemon spends anything it cannot get back (a join token): the
 * path fits, no running process serves it (a stale socket is removed), and a bind there succeeds.
 * The trial listener is closed at once, which removes its file; the real one binds later and finds
 * the path as this left it, or, should another daemon have bound meanwhile, refuses it the same way.
 */
export async function claimSocketPath(socketPath: string, field: string): Promise<void> {
  checkSocketPathLength(socketPath, field);
  await removeStaleSocket(socketPath, field);
  const trial = createServer();
  // Owner-only while it exists: nobody else has any business connecting to a trial bind.
  await listenOnSocket(trial, socketPath, 0o600, { field });
  await new Promise<void>((resolve) => trial.close(() => resolve()));
}

export interface ListenOptions {
  /** The setting that chose the path, for messages. Defaults to "socket". */
  readonly field?: string;
  /** Defaults to process.umask. */
  readonly setUmask?: SetUmask;
}

/**
 * Listens on `socketPath` and sets the socket file to exactly `mode`. The caller has prepared the
 * directory and removed any stale socket. A failure rejects with ERR_CONFIG_INVALID naming the path,
 * `field` (the setting that chose it) and what to do; the errno error is its `cause`.
 */
export function listenOnSocket(
  server: Server,
  socketPath: string,
  mode: number,
  options: ListenOptions = {},
): Promise<void> {
  const { setUmask = setProcessUmask, field = 'socket' } = options;
  try {
    checkSocketPathLength(socketPath, field);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => reject(listenError(socketPath, field, err));
    server.once('error', fail);
    // bind() creates the file with 0777 minus the umask, and net.Server binds synchronously inside
    // listen() (outside cluster workers), so a umask withholding every bit `mode` lacks, for the
    // length of this call only, means the file is born with at most `mode`. The umask only ever
    // gets stricter here: a file the thread pool creates meanwhile comes out with fewer
    // permissions, never more. Reading the umask means setting it, hence the strictest one first.
    const previous = setUmask(0o777);
    try {
      setUmask(previous | (~mode & 0o777));
      server.listen(socketPath, () => {
        server.off('error', fail);
        try {
          // Exactly `mode`: the umask may also have taken bits we want, such as the Workload API's 0777.
          chmodSync(socketPath, mode);
          resolve();
        } catch (err) {
          fail(err as NodeJS.ErrnoException);
        }
      });
    } finally {
      setUmask(previous);
    }
  });
}

/**
 * Connects to the socket: 'answers', 'stale' (ECONNREFUSED), 'gone' (ENOENT), or the errno code of
 * another failure. No timeout is needed: a Unix connect completes or fails at once (a listener whose
 * backlog is full fails it with EAGAIN, reported like any other errno and so refused, not unlinked).
 */
function probeSocket(socketPath: string): Promise<string> {
  return new Promise((resolve) => {
    const probe = connect(socketPath);
    const done = (result: string) => {
      probe.destroy();
      resolve(result);
    };
    probe.once('connect', () => done('answers'));
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('stale');
      else if (err.code === 'ENOENT') done('gone');
      else done(err.code ?? err.message);
    });
  });
}

/** One line for a failed bind: the path, the errno, and what to change. */
function listenError(socketPath: string, field: string, err: NodeJS.ErrnoException): SigilError {
  const dir = path.dirname(socketPath);
  // libuv reports a missing directory as EACCES, the very error a fresh machine used to show.
  if (!existsSync(dir)) {
    return new SigilError(
      'ERR_CONFIG_INVALID',
      `${field}: cannot listen on ${socketPath}: its directory ${dir} does not exist; create it or choose another path with ${field}`,
      { field, reason: 'listen', cause: err },
    );
  }
  const uid = process.getuid?.();
  const advice: Record<string, string> = {
    EACCES: `uid ${uid} may not create files in ${dir}; give this user write access to it, or choose another path with ${field}`,
    EPERM: `uid ${uid} may not create files in ${dir}; give this user write access to it, or choose another path with ${field}`,
    EROFS: `${dir} is on a read-only file system; choose another path with ${field}`,
    EADDRINUSE: `another process listens there; stop it or choose another path with ${field}`,
  };
  const what = advice[err.code ?? ''] ?? `choose another path with ${field}`;
  return new SigilError(
    'ERR_CONFIG_INVALID',
    `${field}: cannot listen on ${socketPath}: ${err.code ?? err.message}; ${what}`,
    { field, reason: 'listen', cause: err },
  );
}
