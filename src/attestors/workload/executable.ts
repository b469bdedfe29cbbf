// Which executable a process runs, as /proc/<pid>/exe says: its path (readlink) and the file's
// device and inode (stat follows the link to the very file, even one since renamed or deleted).
// The Workload API records it when a connection is accepted and compares it on every call: a
// process that has exec'd since it connected is no longer the program that connected, although
// its pid, uid and pidfd are unchanged. Attestors that describe the executable (unix:path,
// unix:sha256) check that they describe the recorded one. Reading another user's /proc/<pid>/exe
// needs ptrace-read access, which in practice means the agent runs as root.
import { readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { SigilError } from '../../spiffe/errors.js';

export interface ExecutableIdentity {
  /** The path the process was exec'd from (" (deleted)" appended by the kernel once unlinked). */
  readonly path: string;
  readonly dev: bigint;
  readonly ino: bigint;
}

/** What was recorded at connect time when the executable could not be read then. */
export interface ExecutableUnknown {
  readonly error: string;
}

/**
 * Reads the executable of `pid`. Throws ERR_UNAVAILABLE, with reason 'exited' when the process is
 * gone (ENOENT, ESRCH) and 'proc' for any other failure (EACCES, EMFILE…), whose errno is kept in
 * the message so a descriptor shortage is never reported as an exit.
 */
export function readExecutable(procRoot: string, pid: number): ExecutableIdentity {
  const exe = path.join(procRoot, String(pid), 'exe');
  try {
    const target = readlinkSync(exe);
    const stat = statSync(exe, { bigint: true });
    return Object.freeze({ path: target, dev: stat.dev, ino: stat.ino });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const exited = code === 'ENOENT' || code === 'ESRCH';
    throw new SigilError(
      'ERR_UNAVAILABLE',
      exited
        ? `process ${pid} has exited`
        : `process ${pid}: cannot read its executable: ${(err as Error).message}`,
      { reason: exited ? 'exited' : 'proc', cause: err },
    );
  }
}

/**
 * Undefined when `current` is the `recorded` executable (same device and inode); otherwise
 * "has exec'd <current> since it connected running <recorded>", both with device and inode, for
 * logs. The file decides, not the path: the path alone cannot tell two files apart, and it changes
 * without any exec when the binary is upgraded in place (the link then reads "<path> (deleted)").
 */
export function execSince(recorded: ExecutableIdentity, current: ExecutableIdentity): string | undefined {
  if (recorded.dev === current.dev && recorded.ino === current.ino) return undefined;
  return `has exec'd ${describe(current)} since it connected running ${describe(recorded)}`;
}

function describe(exe: ExecutableIdentity): string {
  return `${exe.path} (device ${exe.dev}, inode ${exe.ino})`;
}
