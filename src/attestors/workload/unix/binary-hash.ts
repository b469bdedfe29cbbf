// SHA-256 of a workload's executable, read through /proc/<pid>/exe so we hash the very file the
// process runs (even if the path was since replaced or lives in another mount namespace). Cached by
// content key (device, inode, size, mtime and ctime: ctime cannot be set back by the file's owner as
// mtime can, so a rewrite never matches an old key), so a binary hashed once is not re-read for
// every call of every replica. Work is bounded (hash-budget.ts), concurrent requests for the same
// content share one read, and a file that changes while it is read yields an error, never a hash.
import { createHash } from 'node:crypto';
import { type BigIntStats, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { SigilError } from '../../../spiffe/errors.js';
import type { HashBudget } from './hash-budget.js';

/** Bounds memory: one entry per distinct binary content seen; more than this many binaries is unusual. */
const MAX_CACHED_BINARIES = 1024;
const READ_CHUNK_BYTES = 1024 * 1024;

export interface BinaryHasherStats {
  /** Files read and hashed (cache misses that were within budget). */
  readonly hashes: number;
  readonly bytesHashed: number;
}

export class BinaryHasher {
  /** Content key → hex digest; Map order is the insertion (eviction) order. */
  private readonly cache = new Map<string, string>();
  private readonly inFlight = new Map<string, Promise<string>>();
  private counters = { hashes: 0, bytesHashed: 0 };

  constructor(
    private readonly sizeLimitBytes: number,
    private readonly budget: HashBudget,
  ) {}

  get stats(): BinaryHasherStats {
    return { ...this.counters };
  }

  /**
   * Hex SHA-256 of `file`, or undefined when it is larger than the limit. With `expected`, the file
   * must be that device and inode (the executable recorded when the caller connected). Throws
   * ERR_UNAVAILABLE (retryable) when the budget refuses the work or the file changes meanwhile.
   */
  async hash(file: string, expected?: { dev: bigint; ino: bigint }): Promise<string | undefined> {
    // A stat first: the common case (a binary already hashed, or too large) opens nothing.
    const stat = statSync(file, { bigint: true });
    if (expected !== undefined && (stat.dev !== expected.dev || stat.ino !== expected.ino)) {
      throw hashError('the executable is no longer the one the process connected with', 'exec');
    }
    if (stat.size > BigInt(this.sizeLimitBytes)) return undefined;
    const key = contentKey(stat);
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    const refusal = this.budget.take(`${stat.dev}:${stat.ino}`, Number(stat.size));
    if (refusal !== undefined) throw hashError(`not hashed: ${refusal}`, 'hash-budget');
    const flight = this.read(file, key);
    this.inFlight.set(key, flight);
    try {
      return await flight;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async read(file: string, key: string): Promise<string> {
    const handle = await open(file, 'r');
    try {
      if (contentKey(await handle.stat({ bigint: true })) !== key) throw changedError();
      const hash = createHash('sha256');
      const buffer = Buffer.alloc(READ_CHUNK_BYTES);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        this.counters.bytesHashed += bytesRead;
      }
      this.counters.hashes++;
      // Written to while we read: the digest may mix old and new content, so it describes nothing.
      if (contentKey(await handle.stat({ bigint: true })) !== key) throw changedError();
      const hex = hash.digest('hex');
      if (this.cache.size >= MAX_CACHED_BINARIES) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, hex);
      return hex;
    } finally {
      await handle.close();
    }
  }
}

function contentKey(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}

function changedError(): SigilError {
  return hashError('the executable changed while it was being hashed; retry', 'changed');
}

function hashError(message: string, reason: string): SigilError {
  return new SigilError('ERR_UNAVAILABLE', message, { reason });
}
