// An exclusive claim on a data directory, so that two servers (or two agents) never write one store
// and one key folder. Node has no flock, so the claim is a file naming its holder: pid, the process's
// start time (/proc/<pid>/stat) and the kernel's boot id. A holder that died, even by kill -9, leaves
// a claim the next start sees is stale (no such pid, or the pid now belongs to a younger process, or
// the machine rebooted) and takes over. Holders must share a pid namespace (one host, one container):
// that is what the check can see. Not a database lock: servers sharing one PostgreSQL database by
// design each keep their own data dir.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { quote, SigilError } from './errors.js';

/**
 * Claims are generations: `sigil.lock.1`, `sigil.lock.2`… The newest one says who holds the directory.
 * Taking over a stale or released generation N means creating N+1 with link(2), which fails when
 * N+1 exists: of two processes that judged N free at once, exactly one wins, and no claim is ever
 * deleted by someone who merely read it (the race of "unlink the stale file, create ours", where a
 * slow process deletes the claim a faster one just made). Older generations are removed by the winner;
 * release writes a new "released" generation, so numbers never go back and a name is never reused.
 */
const CLAIM_PREFIX = 'sigil.lock.';
const CLAIM_NAME = /^sigil\.lock\.(\d{1,15})$/;
/** A claim is a few fields of JSON; anything longer was not written by us and is not read further. */
const MAX_CLAIM_BYTES = 4096;
/** Each attempt loses only to a process that made progress, so a few attempts end any honest race. */
const MAX_ATTEMPTS = 16;

/** What the claim check reads about processes; the real one reads /proc. Injected in tests. */
export interface ProcessTable {
  /** This process's pid. */
  readonly pid: number;
  /** Whether a process with this pid exists (it may belong to another user). */
  exists(pid: number): boolean;
  /** The process's start time (clock ticks since boot, as /proc gives it); null when unreadable. */
  startTime(pid: number): string | null;
  /** The running kernel's boot id; null when unreadable. */
  bootId(): string | null;
}

export interface DataDirLockOptions {
  /** Who claims it, named in the error another claimant gets: `sigil-server`, `sigil-agent`. */
  readonly what: string;
  /** The config key or flag the directory came from, for messages. Defaults to `data_dir`. */
  readonly field?: string;
  /** The flag that picks another directory, for messages. Defaults to `--data-dir`. */
  readonly flag?: string;
  /** Defaults to the real one (`/proc`). */
  readonly processes?: ProcessTable;
}

export interface DataDirLock {
  /** The claim file we hold. */
  readonly file: string;
  /** Gives the directory up; safe to call more than once. Synchronous, so an exit path can call it. */
  release(): void;
}

interface HeldClaim {
  readonly state: 'held';
  readonly what: string;
  readonly pid: number;
  readonly startTime: string | null;
  readonly bootId: string | null;
}
type Claim = HeldClaim | { readonly state: 'released' };

/**
 * Claims `dir` (which must exist: create it with `ensurePrivateDir` first) for this process until
 * `release()` or exit. Throws ERR_DATA_DIR_LOCKED naming the holder's pid when a live process holds
 * it, ERR_CONFIG_INVALID when the directory cannot be read or written.
 */
export function lockDataDir(dir: string, options: DataDirLockOptions): DataDirLock {
  const processes = options.processes ?? systemProcessTable;
  const field = options.field ?? 'data_dir';
  const self: HeldClaim = {
    state: 'held',
    what: options.what,
    pid: processes.pid,
    startTime: processes.startTime(processes.pid),
    bootId: processes.bootId(),
  };
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const newest = newestGeneration(dir);
      if (newest > 0) {
        const claim = readClaim(claimPath(dir, newest));
        // Gone between listing and reading: someone moved on; look again.
        if (claim === undefined) continue;
        if (claim !== null && claim.state === 'held' && isAlive(claim, processes)) {
          throw new SigilError(
            'ERR_DATA_DIR_LOCKED',
            `${field} ${dir} is in use by ${claim.what} pid ${claim.pid}; stop it or use another ${options.flag ?? '--data-dir'}`,
            { field, reason: 'in-use' },
          );
        }
      }
      const file = claimPath(dir, newest + 1);
      if (!createClaim(file, self)) continue;
      removeOlderGenerations(dir, newest + 1);
      return heldLock(dir, file, newest + 1);
    }
  } catch (err) {
    if (err instanceof SigilError) throw err;
    throw ioError(dir, field, err);
  }
  throw new SigilError(
    'ERR_DATA_DIR_LOCKED',
    `${field} ${dir}: other processes kept claiming it at the same time (${MAX_ATTEMPTS} attempts); start one at a time`,
    { field, reason: 'contended' },
  );
}

function heldLock(dir: string, file: string, generation: number): DataDirLock {
  let held = true;
  return {
    file,
    release() {
      if (!held) return;
      held = false;
      // A new generation rather than an unlink: generation numbers then never repeat (see above).
      // If someone already wrote the next one, it is theirs and ours is superseded: nothing to do.
      if (createClaim(claimPath(dir, generation + 1), { state: 'released' }))
        removeOlderGenerations(dir, generation + 1);
    },
  };
}

function claimPath(dir: string, generation: number): string {
  return path.join(dir, `${CLAIM_PREFIX}${generation}`);
}

function generations(dir: string): number[] {
  return readdirSync(dir).flatMap((name) => {
    const match = CLAIM_NAME.exec(name);
    return match ? [Number(match[1])] : [];
  });
}

function newestGeneration(dir: string): number {
  return Math.max(0, ...generations(dir));
}

function removeOlderGenerations(dir: string, keep: number): void {
  for (const generation of generations(dir)) {
    if (generation < keep) unlinkQuietly(claimPath(dir, generation));
  }
}

/**
 * Creates `file` holding `claim`, complete from its first instant: written to a private temp file,
 * then hard-linked into place (link(2) never replaces). False when `file` already exists.
 */
function createClaim(file: string, claim: Claim): boolean {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(claim)}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkQuietly(temp);
  }
}

/** The claim in `file`; undefined when the file is gone, null when it is not a claim we wrote. */
function readClaim(file: string): Claim | null | undefined {
  let text: string;
  try {
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(MAX_CLAIM_BYTES);
      text = buffer.subarray(0, readSync(fd, buffer, 0, MAX_CLAIM_BYTES, 0)).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    if (value.state === 'released') return { state: 'released' };
    if (value.state === 'held' && Number.isSafeInteger(value.pid) && (value.pid as number) > 0) {
      return {
        state: 'held',
        what: typeof value.what === 'string' ? value.what.slice(0, 64) : 'another process',
        pid: value.pid as number,
        startTime: typeof value.startTime === 'string' ? value.startTime : null,
        bootId: typeof value.bootId === 'string' ? value.bootId : null,
      };
    }
  } catch {
    // Not JSON: falls through to "not a claim".
  }
  // Nobody we know could hold it by this file, so it blocks nothing: it is replaced like a stale claim.
  return null;
}

/** Whether the process that wrote `claim` still runs: same boot, same pid, same start time. */
function isAlive(claim: HeldClaim, processes: ProcessTable): boolean {
  const bootId = processes.bootId();
  if (claim.bootId !== null && bootId !== null && claim.bootId !== bootId) return false;
  if (!processes.exists(claim.pid)) return false;
  // A live pid with another start time is a younger process that reused the number.
  const startTime = processes.startTime(claim.pid);
  return claim.startTime === null || startTime === null || startTime === claim.startTime;
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    // Already gone (another claimant cleaned up first): the goal is reached either way.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function ioError(dir: string, field: string, err: unknown): SigilError {
  return new SigilError(
    'ERR_CONFIG_INVALID',
    `${field} ${quote(dir)}: cannot claim it: ${(err as Error).message}`,
    {
      field,
      reason: 'lock-io',
      cause: err,
    },
  );
}

/** Reads /proc under `procRoot`. */
export function procProcessTable(procRoot = '/proc', pid = process.pid): ProcessTable {
  return {
    pid,
    exists(target) {
      try {
        process.kill(target, 0);
        return true;
      } catch (err) {
        // EPERM: it exists but belongs to another user, which still makes it the holder.
        return (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    },
    startTime(target) {
      try {
        const stat = readFileSync(path.join(procRoot, String(target), 'stat'), 'utf8');
        // Field 22, counted after the command name, which may itself hold spaces and parentheses.
        return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
      } catch {
        // No /proc (not Linux) or the process just ended: liveness rests on the pid alone.
        return null;
      }
    },
    bootId() {
      try {
        return readFileSync(path.join(procRoot, 'sys', 'kernel', 'random', 'boot_id'), 'utf8').trim() || null;
      } catch {
        // No /proc: a reboot is then caught by the pid check alone.
        return null;
      }
    },
  };
}

const systemProcessTable = procProcessTable();
