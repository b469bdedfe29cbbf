// Keeps a value read from a file (the policy, the proxy config) current without a restart. The
// directory is watched rather than the file, because editors and config-map updates save by writing
// a temp file and renaming it over the original, which a watch on the old inode would never see; a
// periodic stat on the injected Clock catches whatever fs.watch misses (network filesystems, some
// containers). A file that fails to read or parse is reported and the previous value stays in force.
// What the value means, and what to do when it changes, is the caller's.
import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Clock, systemClock } from '../spiffe/clock.js';
import { isSigilError, SigilError, type SigilErrorCode } from '../spiffe/errors.js';

/** How often the file is stat'ed as a fallback for missed watch events: 2s. */
const DEFAULT_POLL_INTERVAL_MS = 2_000;
/** A save is often several writes (truncate, write, rename); wait for a quiet 100ms before reading. */
const DEFAULT_DEBOUNCE_MS = 100;

/** What a caller of a typed watch (policy, routes, proxy config) passes through unchanged. */
export interface FileWatchCallbacks<T> {
  /** Called with each new value once it has replaced the current one. */
  onChange(value: T): void;
  /** Called when changed content cannot be read or parsed; the current value is kept. */
  onError(err: SigilError): void;
  /** Called when fs.watch fails and only the stat poll is left. */
  onWatchFailure?(err: Error): void;
  /** Defaults to systemClock. */
  clock?: Clock;
  /** Fallback stat interval, in milliseconds. Defaults to 2s. */
  pollIntervalMs?: number;
  /** Quiet period after a watch event before reading, in milliseconds. Defaults to 100ms. */
  debounceMs?: number;
}

export interface FileWatchOptions<T> extends FileWatchCallbacks<T> {
  /** Turns the file's text into the value; a SigilError it throws rejects that content. */
  parse(text: string): T;
  /** The error reported when the file cannot be read (its code is the caller's): see readFailure. */
  readError(err: unknown): SigilError;
}

/** "`what` could not be read (ENOENT)": the read error every watched file reports, with its own code. */
export function readFailure(
  code: SigilErrorCode,
  what: string,
  err: unknown,
  details: { field?: string } = {},
): SigilError {
  const cause = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new SigilError(code, `${what} could not be read (${cause})`, {
    reason: 'read',
    ...details,
    cause: err,
  });
}

export interface FileWatch<T> {
  /** The value in force: from the last file content that parsed. */
  current(): T;
  /** Stops watching; no callback runs afterwards. */
  close(): void;
}

/** Reads and parses `file` now (throwing what `readError`/`parse` throw), then watches it. */
export function watchFile<T>(file: string, options: FileWatchOptions<T>): FileWatch<T> {
  const clock = options.clock ?? systemClock;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;

  let lastStat = statKey(() => statSync(file));
  let lastText: string;
  try {
    lastText = readFileSync(file, 'utf8');
  } catch (err) {
    throw options.readError(err);
  }
  let current = options.parse(lastText);
  /** The read failure last reported, so a missing file is reported once, not every poll. */
  let lastReadFailure: string | null = null;
  let closed = false;
  let reading = false;
  let readAgain = false;
  let cancelDebounce: (() => void) | null = null;
  let cancelPoll: (() => void) | null = null;

  const reloadOnce = async (): Promise<void> => {
    let text: string;
    try {
      lastStat = await statKeyAsync(file);
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (closed) return;
      const failure = options.readError(err);
      if (failure.message === lastReadFailure) return;
      lastReadFailure = failure.message;
      options.onError(failure);
      return;
    }
    lastReadFailure = null;
    // Unchanged content (a touch, or watch and poll both firing) is neither re-applied nor re-reported.
    if (closed || text === lastText) return;
    lastText = text;
    let next: T;
    try {
      next = options.parse(text);
    } catch (err) {
      if (!isSigilError(err)) throw err;
      options.onError(err);
      return;
    }
    current = next;
    options.onChange(next);
  };

  // One read at a time; a change that arrives meanwhile triggers one more read after it.
  const reload = async (): Promise<void> => {
    if (reading) {
      readAgain = true;
      return;
    }
    reading = true;
    try {
      do {
        readAgain = false;
        await reloadOnce();
      } while (readAgain && !closed);
    } finally {
      reading = false;
    }
  };

  const schedule = (): void => {
    if (closed) return;
    cancelDebounce?.();
    cancelDebounce = clock.setTimer(debounceMs, () => {
      cancelDebounce = null;
      void reload();
    });
  };

  const poll = async (): Promise<void> => {
    cancelPoll = null;
    try {
      if ((await statKeyAsync(file)) !== lastStat) await reload();
    } finally {
      if (!closed) cancelPoll = clock.setTimer(pollIntervalMs, () => void poll());
    }
  };

  const base = path.basename(file);
  let watcher: FSWatcher | null = null;
  try {
    // persistent: false, like unref'd timers: watching must not keep the process alive.
    watcher = watch(path.dirname(file), { persistent: false }, (_event, name) => {
      // Some platforms omit the name; then any change in the directory may be ours.
      if (name === null || name === base) schedule();
    });
    watcher.on('error', (err) => {
      options.onWatchFailure?.(err);
      watcher?.close();
      watcher = null;
    });
  } catch (err) {
    options.onWatchFailure?.(err as Error);
  }
  cancelPoll = clock.setTimer(pollIntervalMs, () => void poll());

  return {
    current: () => current,
    close() {
      closed = true;
      watcher?.close();
      watcher = null;
      cancelDebounce?.();
      cancelPoll?.();
    },
  };
}

/** Identifies a version of the file; a rename-on-save changes the inode even if size and mtime match. */
function statKey(read: () => { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  try {
    const s = read();
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    // Missing or unreadable: the read that follows reports why.
    return 'unreadable';
  }
}

async function statKeyAsync(file: string): Promise<string> {
  try {
    const s = await stat(file);
    return statKey(() => s);
  } catch {
    // As in statKey: the read that follows reports why.
    return 'unreadable';
  }
}
