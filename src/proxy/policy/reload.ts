// Keeps a policy file's compiled set current without a restart, through file-watch.ts (directory
// watch, stat poll, debounce on the injected Clock). A file that fails to read or parse is reported
// and logged, and the previous set stays in force.
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { watchFile } from '../file-watch.js';
import type { PolicySet } from './model.js';
import { parsePolicyFile } from './parse.js';

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
  const { logger } = options;
  return watchFile(file, {
    parse: (text) => parsePolicyFile(text, file),
    readError: (err) => readError(file, err),
    onChange(set) {
      logger?.info({ file, policies: set.policies.length }, 'Policy reloaded');
      options.onChange(set);
    },
    onError(err) {
      logger?.warn({ file, err: err.message }, 'Policy reload rejected; keeping the previous policy');
      options.onError(err);
    },
    onWatchFailure: (err) =>
      logger?.warn({ file, err: err.message }, 'Policy file watch failed; polling only'),
    clock: options.clock,
    pollIntervalMs: options.pollIntervalMs,
    debounceMs: options.debounceMs,
  });
}

function readError(file: string, err: unknown): SigilError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new SigilError('ERR_POLICY_INVALID', `policy file ${file} could not be read (${code})`, {
    reason: 'read',
    cause: err,
  });
}
