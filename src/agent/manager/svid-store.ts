// Keeps the manager's cache (entries, bundles, workload X.509-SVIDs with their keys) in one 0600
// file in the agent's data dir, so an agent restarted while the server is down serves every cached
// workload until its SVID expires. Writes are coalesced: a change marks the cache dirty and one
// write follows after a short delay, however many SVIDs changed meanwhile, and the next write waits
// at least ten times as long as the last one took, so renewing 10,000 SVIDs costs a few writes of
// one file, not 10,000 (bench:svid-store: ~20 ms to write 1,000 SVIDs, ~260 ms for 10,000). A file
// that is too large, corrupt, of another version or of another agent is ignored with a warning,
// never fatal. 'memory' keeps nothing and removes a file an earlier 'disk' run left, so no key
// outlives the choice.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../../spiffe/clock.js';
import type { TrustDomain } from '../../spiffe/id.js';
import { ensurePrivateDir, SECRET_FILE_MODE, writeFileAtomic } from '../../spiffe/secret-file.js';
import { decodePersistedCache, encodePersistedCache, type PersistedCache } from './persisted-cache.js';

export type SvidStoreKind = 'disk' | 'memory';
export const SVID_STORE_KINDS: readonly SvidStoreKind[] = ['disk', 'memory'];
/** The file's name in the data dir. */
export const SVID_STORE_FILE = 'workload-svids.json';

/** A change is written this long after it happened, so a batch of mints lands in one write. */
const WRITE_DELAY_MS = 1_000;
/** The next write waits this many times as long as the last one took: writing stays under ~10% of the time. */
const WRITE_COST_FACTOR = 10;
/** After a failed write (disk full, say), the next attempt comes this much later. */
const WRITE_RETRY_MS = 30_000;
/** Per cached SVID in the file: a chain of a few certificates and a key, base64, with room to spare. */
const MAX_FILE_BYTES_PER_SVID = 16 * 1024;
/** Entries and bundles, whatever the SVID bound: about 200,000 entries. */
const MAX_FILE_BYTES_ENTRIES = 64 * 1024 * 1024;

export interface SvidStore {
  /** The cache an earlier run kept for `agentId`, checked, or null (nothing kept, or refused with a warning). */
  load(agentId: string): Promise<PersistedCache | null>;
  /** The cache changed: write it soon. */
  markDirty(): void;
  /** Writes what is pending, then stops; later changes are not written. */
  close(): Promise<void>;
}

export interface SvidStoreOptions {
  readonly dataDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly trustDomain: TrustDomain;
  /** The agent's svid_cache_max: more SVIDs than this are not loaded, and bound the file's size. */
  readonly maxSvids: number;
  /** The cache to write, as it is now (AgentManager.exportCache). */
  snapshot(): PersistedCache;
}

export function createSvidStore(kind: SvidStoreKind, options: SvidStoreOptions): SvidStore {
  return kind === 'disk' ? new DiskSvidStore(options) : new MemorySvidStore(options);
}

/** The largest file `load` reads for this SVID bound. */
export function maxSvidStoreBytes(maxSvids: number): number {
  return MAX_FILE_BYTES_ENTRIES + maxSvids * MAX_FILE_BYTES_PER_SVID;
}

class MemorySvidStore implements SvidStore {
  constructor(private readonly options: SvidStoreOptions) {}

  async load(): Promise<null> {
    const file = path.join(this.options.dataDir, SVID_STORE_FILE);
    try {
      await rm(file);
      this.options.logger.info({ file }, 'Removed the workload SVID cache file (svid_store: memory)');
    } catch {
      // No file: nothing was kept, the usual case.
    }
    return null;
  }

  markDirty(): void {}

  async close(): Promise<void> {}
}

class DiskSvidStore implements SvidStore {
  private readonly file: string;
  private readonly log: Logger;
  private dirty = false;
  private closed = false;
  private writing: Promise<void> | undefined;
  private cancelTimer: (() => void) | undefined;
  /** No write starts before this (WRITE_COST_FACTOR times the last write's cost after it ended). */
  private quietUntilMs = 0;

  constructor(private readonly options: SvidStoreOptions) {
    this.file = path.join(options.dataDir, SVID_STORE_FILE);
    this.log = options.logger;
  }

  async load(agentId: string): Promise<PersistedCache | null> {
    await this.removeTempFiles();
    const { clock, trustDomain, maxSvids } = this.options;
    const ignore = (reason: string) => {
      this.log.warn({ file: this.file, reason }, 'Workload SVID cache ignored; starting without it');
      return null;
    };
    let text: string;
    try {
      const { size } = await stat(this.file);
      const maxBytes = maxSvidStoreBytes(maxSvids);
      if (size > maxBytes) return ignore(`${size} bytes, more than ${maxBytes} (svid_cache_max ${maxSvids})`);
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      return ignore(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let decoded: ReturnType<typeof decodePersistedCache>;
    try {
      decoded = decodePersistedCache(text, { trustDomain, nowMs: clock.nowMs(), maxSvids });
    } catch (err) {
      // decodePersistedCache's messages name the place, never the content (which holds keys).
      return ignore((err as Error).message);
    }
    const { cache, expired, dropped } = decoded;
    if (cache.agentId !== agentId) return ignore(`it was kept for agent ${cache.agentId}, not ${agentId}`);
    this.log.info(
      {
        entries: cache.entries.length,
        svids: cache.svids.length,
        expired,
        dropped,
        revision: cache.revision,
      },
      'Workload SVID cache loaded; serving it until the server is reached',
    );
    return cache;
  }

  markDirty(): void {
    if (this.closed) return;
    this.dirty = true;
    this.schedule(WRITE_DELAY_MS);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.writing;
    if (this.dirty) await this.write();
  }

  private schedule(delayMs: number): void {
    if (this.cancelTimer !== undefined || this.writing !== undefined) return;
    const waitMs = Math.max(delayMs, this.quietUntilMs - this.options.clock.nowMs());
    this.cancelTimer = this.options.clock.setTimer(waitMs, () => {
      this.cancelTimer = undefined;
      void this.write();
    });
  }

  private write(): Promise<void> {
    // Assigned before writeOnce can settle, and cleared in a later microtask: no race with `??=`.
    this.writing ??= this.writeOnce().then((retryMs) => {
      this.writing = undefined;
      if (this.dirty && !this.closed) this.schedule(retryMs);
    });
    return this.writing;
  }

  /** One write of the whole cache; resolves with how long to wait before writing again if still dirty. */
  private async writeOnce(): Promise<number> {
    const { clock } = this.options;
    this.dirty = false;
    const startMs = clock.nowMs();
    try {
      const cache = this.options.snapshot();
      ensurePrivateDir(this.options.dataDir);
      await writeFileAtomic(this.file, encodePersistedCache(cache), SECRET_FILE_MODE);
      const tookMs = clock.nowMs() - startMs;
      this.quietUntilMs = clock.nowMs() + tookMs * WRITE_COST_FACTOR;
      this.log.debug(
        { svids: cache.svids.length, entries: cache.entries.length, tookMs },
        'Workload SVID cache written',
      );
      return WRITE_DELAY_MS;
    } catch (err) {
      this.dirty = true;
      this.log.warn(
        {
          file: this.file,
          reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
          retryInMs: WRITE_RETRY_MS,
        },
        'Writing the workload SVID cache failed; the previous file stays',
      );
      return WRITE_RETRY_MS;
    }
  }

  /** Temp files a crash left mid-write hold keys too: remove them (the last complete file stays). */
  private async removeTempFiles(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.options.dataDir);
    } catch {
      // No data dir yet: nothing was ever written.
      return;
    }
    const prefix = `${SVID_STORE_FILE}.`;
    for (const name of names) {
      if (name.startsWith(prefix) && name.endsWith('.tmp'))
        await rm(path.join(this.options.dataDir, name), { force: true });
    }
  }
}
