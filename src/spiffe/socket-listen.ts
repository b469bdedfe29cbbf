// Binds a server to a Unix socket so that the socket file never exists with more permissions than
// its final mode, not even between bind() and chmod(): the directory's checks (socket-dir.ts) keep
// others from swapping the file, this keeps them from connecting to it early. A stale socket at the
// path is removed first (removeStaleSocket); anything else there is refused, never deleted.
import { chmodSync } from 'node:fs';
import { lstat, unlink } from 'node:fs/promises';
import type { Server } from 'node:net';
import { quote, SigilError } from './errors.js';

/** Sets the process umask and returns the previous one, as process.umask(mask) does. */
export type SetUmask = (mask: number) => number;

const setProcessUmask: SetUmask = (mask) => process.umask(mask);

/**
 * Removes the socket file a crashed process left at `socketPath`, which would make listen() fail with
 * EADDRINUSE. Anything else there (a regular file, a directory) is not ours to delete: refused as a
 * config error on `field`. It does not check that nobody serves on the socket; a caller that could
 * meet a live one probes first (the server's claimSocket).
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
  await unlink(socketPath);
}

/**
 * Listens on `socketPath` and sets the socket file to exactly `mode`. The caller has prepared the
 * directory and removed any stale socket.
 */
export function listenOnSocket(
  server: Server,
  socketPath: string,
  mode: number,
  setUmask: SetUmask = setProcessUmask,
): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // bind() creates the file with 0777 minus the umask, and net.Server binds synchronously inside
    // listen() (outside cluster workers), so a umask withholding every bit `mode` lacks, for the
    // length of this call only, means the file is born with at most `mode`. The umask only ever
    // gets stricter here: a file the thread pool creates meanwhile comes out with fewer
    // permissions, never more. Reading the umask means setting it, hence the strictest one first.
    const previous = setUmask(0o777);
    try {
      setUmask(previous | (~mode & 0o777));
      server.listen(socketPath, () => {
        server.off('error', reject);
        try {
          // Exactly `mode`: the umask may also have taken bits we want, such as the Workload API's 0777.
          chmodSync(socketPath, mode);
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    } finally {
      setUmask(previous);
    }
  });
}
