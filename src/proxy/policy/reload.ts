// Keeps a policy file's compiled set current without a restart, through file-watch.ts (directory
// watch, stat poll, debounce on the injected Clock). A file that fails to read or parse is reported
// and logged, and the previous set stays in force.
import { type FileWatch, type FileWatchCallbacks, readFailure, watchFile } from '../file-watch.js';
import type { PolicySet } from './model.js';
import { parsePolicyFile } from './parse.js';

/** The two calls this module makes; a pino logger fits. */
export interface PolicyReloadLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** As for any watched file; onChange and onError are also logged when `logger` is given. */
export interface WatchPolicyOptions extends FileWatchCallbacks<PolicySet> {
  logger?: PolicyReloadLogger;
}

/** current() is the set from the last file content that parsed. */
export type PolicyWatch = FileWatch<PolicySet>;

/** Loads `file` (throws ERR_POLICY_INVALID if it is unreadable or broken) and watches it. */
export function watchPolicyFile(file: string, options: WatchPolicyOptions): PolicyWatch {
  const { logger } = options;
  return watchFile(file, {
    ...options,
    parse: (text) => parsePolicyFile(text, file),
    readError: (err) => readFailure('ERR_POLICY_INVALID', `policy file ${file}`, err),
    onChange(set) {
      logger?.info({ file, policies: set.policies.length }, 'Policy reloaded');
      options.onChange(set);
    },
    onError(err) {
      logger?.warn({ file, err: err.message }, 'Policy reload rejected; keeping the previous policy');
      options.onError(err);
    },
    onWatchFailure(err) {
      logger?.warn({ file, err: err.message }, 'Policy file watch failed; polling only');
      options.onWatchFailure?.(err);
    },
  });
}
