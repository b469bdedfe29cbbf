// Where sigil-server and sigil-agent put their sockets when none is configured. A daemon and a CLI
// run by the same user compute the same place, so `sigil-server entry …` finds `sigil-server run`:
//   1. /run/<daemon>, when this user may write there (root, or the RuntimeDirectory= that systemd
//      makes for the service's user);
//   2. else $XDG_RUNTIME_DIR/<daemon>, when it is set and safe (ours and 0700, as the XDG spec says);
//   3. else /tmp/<daemon>-<uid>: one per user, so users never share one, and another user who
//      creates ours first only makes the daemon refuse to start (socket-dir.ts), never hijacks it.
//      A fixed /tmp, not $TMPDIR, which sudo and service managers change between a daemon and its CLI.
// Nothing here reads the environment or the uid: entry points pass them in.
import { accessSync, constants, lstatSync } from 'node:fs';
import path from 'node:path';

export interface RuntimeContext {
  /** The uid of this process. */
  readonly uid: number;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface RuntimeDirFs {
  /** Owner and permission bits of the directory at `target` (not following a final link); undefined if none. */
  directory(target: string): { readonly uid: number; readonly mode: number } | undefined;
  /** Whether anything is at `target`, link or not. */
  exists(target: string): boolean;
  /** Whether this process may create entries in the directory `target` (access(2), W_OK|X_OK). */
  isWritable(target: string): boolean;
}

const systemRuntimeDirFs: RuntimeDirFs = {
  directory(target) {
    try {
      const stats = lstatSync(target);
      return stats.isDirectory() ? { uid: stats.uid, mode: stats.mode & 0o7777 } : undefined;
    } catch {
      // Missing or unreadable: either way not a directory we can use.
      return undefined;
    }
  },
  exists(target) {
    try {
      lstatSync(target);
      return true;
    } catch {
      // ENOENT, or a parent we may not search: nothing usable is there.
      return false;
    }
  },
  isWritable(target) {
    try {
      accessSync(target, constants.W_OK | constants.X_OK);
      return true;
    } catch {
      // Not writable by us, or missing.
      return false;
    }
  },
};

/** Every socket with a default location: its daemon and its path below the daemon's runtime directory. */
const SOCKETS = {
  serverAdmin: { daemon: 'sigil-server', below: 'private/admin.sock' },
  agentAdmin: { daemon: 'sigil-agent', below: 'private/admin.sock' },
  workloadApi: { daemon: 'sigil-agent', below: 'public/api.sock' },
} as const;
export type SocketName = keyof typeof SOCKETS;

const SYSTEM_RUNTIME_ROOT = '/run';

/** The default path of socket `name` for this user (rules in the module comment). */
export function defaultSocketPath(name: SocketName, ctx: RuntimeContext, fs = systemRuntimeDirFs): string {
  const { daemon, below } = SOCKETS[name];
  return path.join(runtimeDir(daemon, ctx, fs), below);
}

/** Where a daemon run by root (or by systemd with RuntimeDirectory=) puts socket `name`. */
export function systemSocketPath(name: SocketName): string {
  const { daemon, below } = SOCKETS[name];
  return path.join(SYSTEM_RUNTIME_ROOT, daemon, below);
}

/** The rule, in words, for `--help` texts and docs. */
export function describeDefaultSocket(name: SocketName): string {
  const { daemon } = SOCKETS[name];
  return `${systemSocketPath(name)} (if you may not write ${SYSTEM_RUNTIME_ROOT}/${daemon}: $XDG_RUNTIME_DIR/${daemon}/… or /tmp/${daemon}-<uid>/…)`;
}

/**
 * Where a workload finds the Workload API: the system agent's socket when there is one, else where
 * an agent run by this same user would listen (a developer's machine). Workloads usually run as
 * other users than the agent, so the same-user rule alone would miss the system agent.
 */
export function defaultWorkloadApiSocket(ctx: RuntimeContext, fs = systemRuntimeDirFs): string {
  const system = systemSocketPath('workloadApi');
  return fs.exists(system) ? system : defaultSocketPath('workloadApi', ctx, fs);
}

function runtimeDir(daemon: string, ctx: RuntimeContext, fs: RuntimeDirFs): string {
  const system = path.join(SYSTEM_RUNTIME_ROOT, daemon);
  const mayWriteSystem = fs.exists(system) ? fs.isWritable(system) : fs.isWritable(SYSTEM_RUNTIME_ROOT);
  if (mayWriteSystem) return system;
  const xdg = ctx.env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && isSafeXdgRuntimeDir(xdg, ctx.uid, fs)) return path.join(xdg, daemon);
  return path.join('/tmp', `${daemon}-${ctx.uid}`);
}

/** The XDG Base Directory spec: absolute, owned by the user, access 0700. Anything else is ignored. */
function isSafeXdgRuntimeDir(dir: string, uid: number, fs: RuntimeDirFs): boolean {
  if (!path.isAbsolute(dir)) return false;
  const info = fs.directory(dir);
  return info !== undefined && info.uid === uid && (info.mode & 0o077) === 0;
}
