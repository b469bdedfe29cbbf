// Reads a routes file, and keeps its table current without a restart through file-watch.ts (a
// directory watch, a stat poll and a debounce on the injected Clock). A file that fails to read or
// parse is reported and the previous table stays in force, so a bad edit never drops routes.
import { readFileSync, statSync } from 'node:fs';
import { SigilError } from '../../spiffe/errors.js';
import { type FileWatch, type FileWatchCallbacks, readFailure, watchFile } from '../file-watch.js';
import type { RouteTable } from './model.js';
import { MAX_ROUTES_FILE_BYTES, parseRouteFile } from './parse.js';

/** onChange gets each new table; onError a file that cannot be read or parsed (the table in force is kept). */
export type WatchRoutesOptions = FileWatchCallbacks<RouteTable>;

/** current() is the table from the last file content that parsed. */
export type RoutesWatch = FileWatch<RouteTable>;

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
    ...options,
    parse: (text) => parseRouteFile(text, file, services()),
    readError: (err) => readError(file, err),
  });
}

function readError(file: string, err: unknown): SigilError {
  return readFailure('ERR_CONFIG_INVALID', `routes file ${file}`, err, { field: 'routes_file' });
}
