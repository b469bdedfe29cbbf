// Keeps a policy file's compiled set current without a restart. The directory is watched rather
// than the file, because editors and config-map updates save by writing a temp file and renaming
// it over the original, which a watch on the old inode would never see; a periodic stat on the
// injected Clock catches whatever fs.watch misses (network filesystems, some containers). A file
// that fails to read or parse is reported and the previous set stays in force.
import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Clock, systemClock } from '../../spiffe/clock.js';
import { isSigilError, SigilError } from '../../spiffe/errors.js';
import type { PolicySet } from './model.js';
import { parsePolicyFile } from './parse.js';

/** How often the file is stat'ed as a fallback for missed watch events: 2s. */
const DEFAULT_POLL_INTERVAL_MS = 2_000;
/** A save is often several writes (truncate, write, rename); wait for a quiet 100ms before reading. */
const DEFAULT_DEBOUNCE_MS = 100;

/** The two calls this module makes; a pino logger fits. */
export interface PolicyReloadLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface WatchPolicyOptions {
  /** Called with each new set once it has replaced the current one. */
  onChange(set: PolicySet): void;
  /** Called when a changed file cannot be read or parsed; the current set is kept. */
  onError(err: SigilError): void;
  /** Defaults to systemClock. */
  clock?: Clock;
  logger?: PolicyReloadLogger;
  /** Fallback stat interval, in milliseconds. Defaults to 2s. */
  pollIntervalMs?: number;
  /** Quiet period after a watch event before reading, in milliseconds. Defaults to 100ms. */
  debounceMs?: number;
}

export interface PolicyWatch {
  /** The set in force: the last file content that parsed. */
  current(): PolicySet;
  /** Stops watching; no callback runs afterwards. */
  close(): void;
}

/** Loads `file` (throws ERR_POLICY_INVALID if it is unreadable or broken) and watches it. */
export function watchPolicyFile(file: string, options: WatchPolicyOptions): PolicyWatch {
  const clock = options.clock ?? systemClock;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const logger = options.logger;

  let lastStat = statKey(() => statSync(file));
  let lastText: string;
  try {
    lastText = readFileSync(file, 'utf8');
  } catch (err) {
    throw readError(file, err);
  }
  let current = parsePolicyFile(lastText, file);
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
      const failure = readError(file, err);
      if (failure.message === lastReadFailure) return;
      lastReadFailure = failure.message;
      reject(failure);
      return;
    }
    lastReadFailure = null;
    // Unchanged content (a touch, or watch and poll both firing) is neither re-applied nor re-reported.
    if (closed || text === lastText) return;
    lastText = text;
    let next: PolicySet;
    try {
      next = parsePolicyFile(text, file);
    } catch (err) {
      if (!isSigilError(err)) throw err;
      reject(err);
      return;
    }
    current = next;
    logger?.info({ file, policies: next.policies.length }, 'Policy reloaded');
    options.onChange(next);
  };

  const reject = (err: SigilError): void => {
    logger?.warn({ file, err: err.message }, 'Policy reload rejected; keeping the previous policy');
    options.onError(err);
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
      logger?.warn({ file, err: err.message }, 'Policy file watch failed; polling only');
      watcher?.close();
      watcher = null;
    });
  } catch (err) {
    logger?.warn({ file, err: (err as Error).message }, 'Policy file watch failed; polling only');
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

function readError(file: string, err: unknown): SigilError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new SigilError('ERR_POLICY_INVALID', `policy file ${file} could not be read (${code})`, {
    reason: 'read',
    cause: err,
  });
}
