// Reads a routes file, and keeps its table current without a restart through file-watch.ts (a
// directory watch, a stat poll and a debounce on the injected Clock). A file that fails to read or
// parse is reported and the previous table stays in force, so a bad edit never drops routes.
import { readFileSync, statSync } from 'node:fs';
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { watchFile } from '../file-watch.js';
import type { RouteTable } from './model.js';
import { MAX_ROUTES_FILE_BYTES, parseRouteFile } from './parse.js';

export interface WatchRoutesOptions {
  /** Called with each new table once it has replaced the current one. */
  onChange(table: RouteTable): void;
  /** Called when a changed file cannot be read or parsed; the current table is kept. */
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

export interface RoutesWatch {
  /** The table in force: from the last file content that parsed. */
  current(): RouteTable;
  /** Stops watching; no callback runs afterwards. */
  close(): void;
}

/** Reads and parses `file`; throws ERR_CONFIG_INVALID when it cannot be read or is broken. */
export function loadRouteFile(file: string, services: ReadonlySet<string>): RouteTable {
  let text: string;
  try {
    // Checked before reading, so a huge file is not read into memory only to be refused.
    const { size } = statSync(file);
    if (size > MAX_ROUTES_FILE_BYTES) {
      throw new SigilError(
        'ERR_CONFIG_INVALID',
        `routes file ${file} is ${size} bytes; a routes file is at most ${MAX_ROUTES_FILE_BYTES} (1 MiB)`,
        { reason: 'routes', field: 'routes_file' },
      );
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SigilError) throw err;
    throw readError(file, err);
  }
  return parseRouteFile(text, file, services);
}

/**
 * Loads `file` (throwing as loadRouteFile does) and watches it. `services` is asked at each
 * parse, so a config reload that adds or removes services is seen by the next routes change.
 */
export function watchRouteFile(
  file: string,
  services: () => ReadonlySet<string>,
  options: WatchRoutesOptions,
): RoutesWatch {
  return watchFile(file, {
    parse: (text) => parseRouteFile(text, file, services()),
    readError: (err) => readError(file, err),
    onChange: options.onChange,
    onError: options.onError,
    onWatchFailure: options.onWatchFailure,
    clock: options.clock,
    pollIntervalMs: options.pollIntervalMs,
    debounceMs: options.debounceMs,
  });
}

function readError(file: string, err: unknown): SigilError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new SigilError('ERR_CONFIG_INVALID', `routes file ${file} could not be read (${code})`, {
    reason: 'read',
    field: 'routes_file',
    cause: err,
  });
}
