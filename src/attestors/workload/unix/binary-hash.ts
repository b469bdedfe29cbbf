// SHA-256 of a workload's executable, read through /proc/<pid>/exe so we hash the very file the
// process runs (even if the path was since replaced or lives in another mount namespace). Cached by
// (dev, inode, mtime, size): a binary hashed once is not re-read for every call of every replica.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';

/** Bounds memory: one entry per distinct binary seen; more than this many binaries is unusual. */
const MAX_CACHED_BINARIES = 1024;
const READ_CHUNK_BYTES = 1024 * 1024;

export class BinaryHasher {
  private readonly cache = new Map<string, string>();

  constructor(private readonly sizeLimitBytes: number) {}

  /** Hex SHA-256 of `file`, or undefined when it is larger than the limit. Throws if unreadable. */
  async hash(file: string): Promise<string | undefined> {
    // A stat first: the common case (a binary already hashed, or too large) opens nothing.
    const stat = statSync(file, { bigint: true });
    if (stat.size > BigInt(this.sizeLimitBytes)) return undefined;
    const key = `${stat.dev}:${stat.ino}:${stat.mtimeNs}:${stat.size}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const handle = await open(file, 'r');
    try {
      const hash = createHash('sha256');
      const buffer = Buffer.alloc(READ_CHUNK_BYTES);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
      }
      const hex = hash.digest('hex');
      if (this.cache.size >= MAX_CACHED_BINARIES) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, hex);
      return hex;
    } finally {
      await handle.close();
    }
  }
}
