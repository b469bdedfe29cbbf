// Who is on the other end of an accepted Workload API connection, as the kernel says: SO_PEERCRED
// (pid, uid, gid captured at connect time), plus a guard against PID reuse. Attestation reads
// /proc/<pid> later, and by then the caller may have exited and its PID gone to another process; so,
// as SPIRE's peertracker warns, callers must re-check the guard AFTER using the PID.
// The guard is a pidfd (SO_PEERPIDFD, Linux >= 6.5: the kernel pins the exact process) when the
// kernel has one, else the process start time from /proc/<pid>/stat, recorded at accept and compared
// after attestation, as SPIRE does. Neither notices an exec, which keeps the pid: so the executable
// (/proc/<pid>/exe: path, device, inode) is recorded at accept too, synchronously, before the
// process can hand the connection to a child and exec another program, and compared on every call.
// Linux only; glibc's libc.so.6 is reached through koffi.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
import koffi from 'koffi';
import {
  type ExecutableIdentity,
  type ExecutableUnknown,
  execSince,
  readExecutable,
} from '../../attestors/workload/index.js';
import type { PeerCred } from '../../attestors/workload/types.js';
import { isSigilError, SigilError } from '../../spiffe/errors.js';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;
const POLLIN = 1;
const EINTR = 4;
const EMFILE = 24;
const ENFILE = 23;
/** A signal landing in poll() (SIGPROF, SIGCHLD…) fails it with EINTR, which says nothing about the peer. */
const MAX_POLL_ATTEMPTS = 5;
/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; a new process gets a new one. */
const STAT_STARTTIME_FIELD = 22;

/**
 * Why the process behind a connection is no longer the one that connected: it exited (its PID may
 * now be someone else's), it exec'd another executable, or /proc cannot tell right now.
 */
export interface PeerChange {
  readonly kind: 'exited' | 'exec' | 'unknown';
  /** For logs: names the pid and, for an exec, both executables. */
  readonly detail: string;
}

/** The connecting process and how to tell, later, whether that PID still names it. */
export interface PeerProcess {
  /** Kernel credentials, plus the executable recorded at accept (`cred.exe`). */
  readonly cred: PeerCred;
  /** 'pidfd' or 'starttime': which guard backs `isSameProcess`. */
  readonly guard: 'pidfd' | 'starttime';
  /** False once the process that connected has exited (its PID may now be someone else's). */
  isSameProcess(): boolean;
  /**
   * Undefined while the process that connected is alive and runs the executable it connected with;
   * otherwise what changed. Costs a readlink and a stat of /proc/<pid>/exe and a poll of the pidfd.
   */
  change(): PeerChange | undefined;
  /** Frees the pidfd, if any. Call when the connection closes. */
  release(): void;
}

export interface PeerCredOptions {
  /** Root of the proc filesystem. Defaults to '/proc'. */
  procRoot?: string;
  /** Use SO_PEERPIDFD when the kernel has it. Defaults to true; false forces the start-time guard. */
  usePidfd?: boolean;
}

interface Libc {
  getsockoptUcred(
    fd: number,
    level: number,
    name: number,
    out: Record<string, number>,
    len: number[],
  ): number;
  getsockoptInt(fd: number, level: number, name: number, out: number[], len: number[]): number;
  poll(fds: Record<string, number>, nfds: number, timeoutMs: number): number;
  close(fd: number): number;
  errno(): number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  const ucred = koffi.struct('sigil_ucred', { pid: 'int32', uid: 'uint32', gid: 'uint32' });
  const pollfd = koffi.struct('sigil_pollfd', { fd: 'int32', events: 'int16', revents: 'int16' });
  libc = {
    getsockoptUcred: lib.func('getsockopt', 'int', [
      'int',
      'int',
      'int',
      koffi.out(koffi.pointer(ucred)),
      koffi.inout(koffi.pointer('uint32')),
    ]),
    getsockoptInt: lib.func('getsockopt', 'int', [
      'int',
      'int',
      'int',
      koffi.out(koffi.pointer('int32')),
      koffi.inout(koffi.pointer('uint32')),
    ]),
    poll: lib.func('poll', 'int', [koffi.inout(koffi.pointer(pollfd)), 'uint64', 'int']),
    close: lib.func('close', 'int', ['int']),
    errno: () => koffi.errno(),
  };
  return libc;
}

/**
 * Reads the peer of an accepted Unix socket. Throws ERR_UNAUTHENTICATED when the kernel gives no
 * usable answer, including pid 0: the caller lives outside our PID namespace, so /proc cannot
 * describe it and attesting it would describe some other process.
 */
export function readPeerProcess(socket: Socket, options: PeerCredOptions = {}): PeerProcess {
  const procRoot = options.procRoot ?? '/proc';
  const fd = socketFd(socket);
  const c = loadLibc();
  const out: Record<string, number> = {};
  if (c.getsockoptUcred(fd, SOL_SOCKET, SO_PEERCRED, out, [12]) !== 0) {
    throw peerError(`getsockopt(SO_PEERCRED) failed with errno ${c.errno()}`, 'peercred');
  }
  const pid = out.pid!;
  if (pid <= 0) {
    throw peerError('the caller is outside the agent PID namespace (peer pid 0)', 'pid-namespace');
  }
  const cred: PeerCred = Object.freeze({
    pid,
    uid: out.uid!,
    gid: out.gid!,
    exe: recordExecutable(procRoot, pid),
  });
  if (options.usePidfd ?? true) {
    const pidfd = [-1];
    if (c.getsockoptInt(fd, SOL_SOCKET, SO_PEERPIDFD, pidfd, [4]) === 0 && pidfd[0]! >= 0) {
      return withExecutableCheck(pidfdGuard(cred, pidfd[0]!, c), procRoot);
    }
    const errno = c.errno();
    if (errno === EMFILE || errno === ENFILE) {
      throw peerError(
        `no file descriptor left for a pidfd (errno ${errno}): descriptor limit reached`,
        'descriptor-limit',
      );
    }
    // Typically ENOPROTOOPT (kernel older than 6.5): fall back to the start-time guard.
  }
  return withExecutableCheck(startTimeGuard(cred, procRoot), procRoot);
}

/** The executable at accept; a process already gone is refused, an unreadable one recorded as such. */
function recordExecutable(procRoot: string, pid: number): ExecutableIdentity | ExecutableUnknown {
  try {
    return readExecutable(procRoot, pid);
  } catch (err) {
    if (isSigilError(err) && err.reason === 'exited') {
      throw peerError(`process ${pid} exited before it could be attested`, 'exited');
    }
    return Object.freeze({ error: (err as Error).message });
  }
}

type Guard = Omit<PeerProcess, 'change'>;

/** Adds `change()`: the executable read now against the one recorded, then the PID-reuse guard. */
function withExecutableCheck(guard: Guard, procRoot: string): PeerProcess {
  const { pid, exe: recorded } = guard.cred;
  const exited = (): PeerChange => ({
    kind: 'exited',
    detail: `process ${pid} has exited (its pid may be reused)`,
  });
  return Object.freeze({
    ...guard,
    change(): PeerChange | undefined {
      if (recorded !== undefined && !('error' in recorded)) {
        let current: ExecutableIdentity;
        try {
          current = readExecutable(procRoot, pid);
        } catch (err) {
          if (isSigilError(err) && err.reason === 'exited') return exited();
          return { kind: 'unknown', detail: (err as Error).message };
        }
        const exec = execSince(recorded, current);
        if (exec !== undefined) return { kind: 'exec', detail: `process ${pid} ${exec}` };
      }
      // After the read: only if the pid still names the process that connected did we read its exe.
      try {
        return guard.isSameProcess() ? undefined : exited();
      } catch (err) {
        return { kind: 'unknown', detail: (err as Error).message };
      }
    },
  });
}

function pidfdGuard(cred: PeerCred, pidfd: number, c: Libc): Guard {
  let open = true;
  return {
    cred,
    guard: 'pidfd' as const,
    isSameProcess() {
      if (!open) return false;
      // A pidfd polls readable once its process has exited; until then the PID cannot be reused.
      for (let attempt = 0; attempt < MAX_POLL_ATTEMPTS; attempt++) {
        const fds = { fd: pidfd, events: POLLIN, revents: 0 };
        const ready = c.poll(fds, 1, 0);
        if (ready === 0) return true;
        // Readable (exited), POLLNVAL or a real error: not provably the same process.
        if (ready > 0 || c.errno() !== EINTR) return false;
      }
      return false;
    },
    release() {
      if (!open) return;
      open = false;
      c.close(pidfd);
    },
  };
}

/**
 * The fallback guard: records the start time of `cred.pid` now and compares later. A process that
 * exited and whose PID was reused has a different start time; a missing /proc entry means it exited.
 */
export function startTimeGuard(cred: PeerCred, procRoot: string): Guard {
  const startedAt = readStartTime(procRoot, cred.pid);
  if (startedAt === undefined)
    throw peerError(`process ${cred.pid} exited before it could be attested`, 'exited');
  return {
    cred,
    guard: 'starttime' as const,
    isSameProcess: () => readStartTime(procRoot, cred.pid) === startedAt,
    release() {},
  };
}

/**
 * Field 22 of /proc/<pid>/stat, or undefined when the process is gone. Any other failure (EMFILE:
 * the agent is out of descriptors) throws with its cause: reporting it as an exit would send the
 * operator after the wrong problem.
 */
export function readStartTime(procRoot: string, pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(path.join(procRoot, String(pid), 'stat'), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOENT/ESRCH: the process has exited, which is exactly what the guard reports.
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw peerError(
      `cannot read /proc/${pid}/stat: ${(err as Error).message}`,
      code === 'EMFILE' ? 'descriptor-limit' : 'proc',
    );
  }
  // Field 2 (comm) is in parentheses and may itself contain spaces and ")": split after the last ")".
  const close = stat.lastIndexOf(')');
  if (close === -1) return undefined;
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] is field 3 (state).
  return rest[STAT_STARTTIME_FIELD - 3];
}

/**
 * The file descriptor of an accepted Unix socket. Node has no public API for it: `_handle.fd` is the
 * internal Pipe handle's descriptor (stable since Node 0.x, used by many native addons). If Node
 * ever drops it, this throws and every connection is refused rather than attested wrongly.
 */
function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw peerError('accepted socket has no file descriptor', 'no-fd');
  return fd;
}

function peerError(rule: string, reason: string): SigilError {
  return new SigilError('ERR_UNAUTHENTICATED', `workload api: peer credentials: ${rule}`, { reason });
}
