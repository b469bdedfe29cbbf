// Trust in a Unix socket's path, after OpenSSH's StrictModes: whoever can write a directory on the
// way to a socket can swap what lies below it, so every directory from / down must belong to us or
// root and be writable by no one else (a world-writable ancestor only with the sticky bit and owned
// by root, as /tmp is). Listeners call prepareSocketDir before binding; clients call
// checkSocketForClient before connecting. Symlinks on the path are followed deliberately: each link
// must belong to us or root (its directory is checked like any other), and its target is walked
// with the same rules. The checks and the bind or connect after them are not atomic, and need not
// be: once every directory on the path is ours or root's and writable by no one else, only we or
// root can change it in between. Deliberately not done: tightening a directory we did not create
// (a shared /run subdirectory, say); we refuse, name the owner and mode, and say what to change.
import { chmodSync, lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { quote, SigilError } from './errors.js';

/** A private socket (admin APIs) sits in an owner-only directory; a public one (the Workload API) in one all may enter. */
export type SocketDirKind = 'private' | 'public';

const SOCKET_DIR_MODES: Readonly<Record<SocketDirKind, number>> = { private: 0o700, public: 0o755 };
/** Missing parents we create: ours and writable by us alone, but enterable, so a public socket below stays reachable. */
const PARENT_DIR_MODE = 0o755;
/** Links followed on one path before giving up: Linux's own limit (ELOOP after 40). */
const MAX_SYMLINK_HOPS = 40;
const ROOT_UID = 0;
const WRITABLE_BY_OTHERS = 0o022;
const STICKY = 0o1000;

export interface PathInfo {
  readonly kind: 'directory' | 'socket' | 'symlink' | 'other';
  readonly uid: number;
  /** Permission bits with set-id and sticky bits (st_mode & 0o7777). */
  readonly mode: number;
}

/** The few file-system calls the checks make; tests pass a fake, everything else the real ones. */
export interface SocketFs {
  /**
   * Like lstat(2), not following a final symlink; undefined when nothing is there, or when a
   * directory above may not be searched (the bind or connect then fails and says so itself).
   */
  lstat(target: string): PathInfo | undefined;
  readlink(target: string): string;
  /** Creates one directory; false when something already exists there. */
  mkdir(target: string, mode: number): boolean;
  chmod(target: string, mode: number): void;
}

const systemSocketFs: SocketFs = {
  lstat(target) {
    try {
      return infoOf(lstatSync(target));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES') return undefined;
      throw err;
    }
  },
  readlink: (target) => readlinkSync(target),
  mkdir(target, mode) {
    try {
      mkdirSync(target, { mode });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  },
  chmod: (target, mode) => chmodSync(target, mode),
};

export interface SocketCheckOptions {
  /** The uid of this process, passed in by the entry point. */
  readonly uid: number;
  /**
   * Clients only: another uid trusted like ours and root's, for a daemon that runs as a user of its
   * own (an agent running as `sigil` serving workloads of other users). Unset: nobody else.
   */
  readonly owner?: number;
  /** The setting that named the socket (`admin_socket`, `--admin-socket`…), for messages and `field`. */
  readonly field: string;
  readonly fs?: SocketFs;
  /** Where refusals are logged before they are thrown; absent in CLIs, which print the error. */
  readonly logger?: { warn(fields: Record<string, unknown>, message: string): void };
}

/**
 * Makes the directory of `socketPath` ready for a listener: missing directories are created (the
 * last one with the kind's mode, parents 0755) and set to that mode exactly, whatever the umask;
 * existing ones are checked and never changed. Throws ERR_SOCKET_UNSAFE naming the first directory
 * (or link) someone else controls, or ERR_CONFIG_INVALID when a directory cannot be created.
 */
export function prepareSocketDir(socketPath: string, kind: SocketDirKind, options: SocketCheckOptions): void {
  const fs = options.fs ?? systemSocketFs;
  refuseLogged(options, () =>
    walk(path.dirname(socketPath), options, {
      // The directory holding our socket must be ours: root owning it is no help to a non-root daemon.
      leaf: { role: 'socket directory', trusted: [options.uid] },
      onMissing: (dir, isLeaf) => {
        const mode = isLeaf ? SOCKET_DIR_MODES[kind] : PARENT_DIR_MODE;
        // Only a directory we just made is ever chmod'ed: the umask may have narrowed our mode.
        // Losing the race to someone else's mkdir leaves theirs to be judged like any other.
        if (createDir(fs, dir, mode, options.field)) fs.chmod(dir, mode);
        return true;
      },
    }),
  );
}

/**
 * Checks a socket before a client connects to it: its directories pass the same checks as a
 * listener's, and the socket itself belongs to us or root, so nobody else can have planted it.
 * Returns quietly when something on the path is missing: the connection then fails with ENOENT,
 * which the caller already reports. Throws ERR_SOCKET_UNSAFE otherwise.
 */
export function checkSocketForClient(socketPath: string, options: SocketCheckOptions): void {
  const trusted = trustedOwners(options);
  refuseLogged(options, () =>
    walk(socketPath, options, {
      leaf: { role: 'socket', trusted },
      leafDir: { role: 'socket directory', trusted },
      onMissing: () => false,
    }),
  );
}

interface Rule {
  /**
   * What the component is to the socket. Only an ancestor `directory` may be writable by others with
   * the sticky bit when root owns it (/tmp); the socket's own directory never.
   */
  readonly role: 'directory' | 'socket directory' | 'socket' | 'symlink';
  /** Owners we accept. */
  readonly trusted: readonly number[];
}

interface WalkPlan {
  /** The rule for the last component, once links are resolved. */
  readonly leaf: Rule;
  /** A stricter rule for the real directory holding the last component, on top of the ancestor rule. */
  readonly leafDir?: Rule;
  /** Called for a missing component; true when something now exists there to judge, false to stop quietly. */
  onMissing(target: string, isLeaf: boolean): boolean;
}

/**
 * Walks `target` one component at a time from /, as the kernel resolves it, judging every
 * directory, link and the last component. `..` and link targets are resolved against the real
 * (link-free) path walked so far, as the kernel does, never lexically on the input.
 */
function walk(target: string, options: SocketCheckOptions, plan: WalkPlan): void {
  const fs = options.fs ?? systemSocketFs;
  const ancestor: Rule = { role: 'directory', trusted: trustedOwners(options) };
  const absolute = path.isAbsolute(target) ? target : path.join(process.cwd(), target);
  let pending = components(absolute);
  let current = '/';
  const rootInfo = fs.lstat(current);
  // What `current` was found to be when the walk stepped onto it, for the leafDir check.
  let currentInfo = rootInfo;
  let hops = 0;
  judge(current, rootInfo, pending.length === 0 ? plan.leaf : ancestor, options);
  while (pending.length > 0) {
    const name = pending.shift()!;
    const next = name === '..' ? path.dirname(current) : path.join(current, name);
    const isLeaf = pending.length === 0;
    let info = fs.lstat(next);
    if (info === undefined) {
      if (!plan.onMissing(next, isLeaf)) return;
      info = fs.lstat(next);
      if (info === undefined) return;
    }
    if (info.kind === 'symlink') {
      // A link's own mode means nothing; its owner (and the directory it sits in) decide who can repoint it.
      judge(next, info, { ...ancestor, role: 'symlink' }, options);
      if (++hops > MAX_SYMLINK_HOPS) {
        throw unsafe(
          options,
          'symlink-loop',
          `${quote(absolute)} has more than ${MAX_SYMLINK_HOPS} symlinks on its path`,
        );
      }
      const link = fs.readlink(next);
      pending = [...components(link), ...pending];
      if (path.isAbsolute(link)) {
        current = '/';
        currentInfo = rootInfo;
      }
      continue;
    }
    if (isLeaf && plan.leafDir) judge(current, currentInfo, plan.leafDir, options);
    judge(next, info, isLeaf ? plan.leaf : ancestor, options);
    current = next;
    currentInfo = info;
  }
}

/** Throws when `info` breaks `rule`; the message names the path, its owner and mode, and the way out. */
function judge(target: string, info: PathInfo | undefined, rule: Rule, options: SocketCheckOptions): void {
  if (info === undefined) return;
  const facts = `owner uid ${info.uid}, mode ${formatMode(info.mode)}`;
  const elsewhere = `choose another path with ${options.field}`;
  if (rule.role !== 'socket' && rule.role !== 'symlink' && info.kind !== 'directory') {
    throw unsafe(
      options,
      'not-directory',
      `${quote(target)} is on the socket's path but is not a directory (${facts})`,
    );
  }
  if (rule.role === 'socket' && info.kind !== 'socket') {
    throw unsafe(options, 'not-socket', `${quote(target)} is not a socket (${facts}); ${elsewhere}`);
  }
  if (!rule.trusted.includes(info.uid)) {
    const daemon = options.owner === undefined ? '' : `, uid ${options.owner} (the daemon's user)`;
    const whom =
      rule.trusted.length === 1
        ? `uid ${options.uid} (this process)`
        : `uid ${options.uid} (you)${daemon} or root`;
    throw unsafe(
      options,
      'owner',
      `${rule.role} ${quote(target)} belongs to someone else (${facts}), not to ${whom}: its owner could swap the socket; remove it if it should not be there, or ${elsewhere}`,
    );
  }
  if (info.kind !== 'directory' || (info.mode & WRITABLE_BY_OTHERS) === 0) return;
  const isSticky = (info.mode & STICKY) !== 0;
  if (rule.role === 'directory' && isSticky && info.uid === ROOT_UID) return;
  const who = (info.mode & 0o002) !== 0 ? 'every user' : 'its group';
  // chmod is wrong advice for a shared sticky directory such as /tmp: the socket belongs in a directory of its own.
  const fix = isSticky
    ? `put the socket in a directory of your own (${elsewhere})`
    : `remove their write access ("chmod go-w ${target}") or ${elsewhere}`;
  throw unsafe(
    options,
    'writable',
    `${rule.role} ${quote(target)} is writable by ${who} (${facts}): any of them could swap the socket; ${fix}`,
  );
}

function createDir(fs: SocketFs, dir: string, mode: number, field: string): boolean {
  try {
    return fs.mkdir(dir, mode);
  } catch (err) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `${field}: cannot create socket directory ${quote(dir)}: ${(err as Error).message}; create it yourself, or choose another path with ${field}`,
      { field, reason: 'socket-dir', cause: err },
    );
  }
}

function refuseLogged(options: SocketCheckOptions, run: () => void): void {
  try {
    run();
  } catch (err) {
    if (err instanceof SigilError && err.code === 'ERR_SOCKET_UNSAFE') {
      options.logger?.warn(
        { field: options.field, reason: err.reason, err: err.message },
        'Unsafe socket path refused',
      );
    }
    throw err;
  }
}

function unsafe(options: SocketCheckOptions, reason: string, message: string): SigilError {
  return new SigilError('ERR_SOCKET_UNSAFE', `${options.field}: ${message}`, {
    field: options.field,
    reason,
  });
}

/** We, root, and the daemon's own user when the client named one. */
function trustedOwners(options: SocketCheckOptions): number[] {
  return options.owner === undefined ? [options.uid, ROOT_UID] : [options.uid, ROOT_UID, options.owner];
}

/** Path components as the kernel sees them: empty ones and `.` change nothing. */
function components(target: string): string[] {
  return target.split('/').filter((part) => part !== '' && part !== '.');
}

function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function infoOf(stats: Stats): PathInfo {
  const kind = stats.isDirectory()
    ? 'directory'
    : stats.isSocket()
      ? 'socket'
      : stats.isSymbolicLink()
        ? 'symlink'
        : 'other';
  return { kind, uid: stats.uid, mode: stats.mode & 0o7777 };
}
