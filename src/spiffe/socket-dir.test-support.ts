// Test support for socket-dir tests: an in-memory file tree with owners and modes, and a helper
// that returns the SigilError a check throws.
import { isSigilError, type SigilError } from './errors.js';
import type { PathInfo, SocketCheckOptions, SocketFs } from './socket-dir.js';

export const ME = 1000;
export const OTHER = 1001;
export const ROOT = 0;

type Entry = PathInfo & { readonly target?: string };

/** An in-memory tree: `mkdir` makes entries owned by `uid` and narrows their mode by `umask`, as the kernel does. */
export class FakeFs implements SocketFs {
  readonly entries = new Map<string, Entry>();
  readonly chmods: string[] = [];
  /** Paths someone else creates just before our mkdir runs (a race we lose). */
  readonly raced = new Map<string, Entry>();

  constructor(
    private readonly uid: number,
    private readonly umask = 0o022,
  ) {
    this.dir('/', ROOT, 0o755);
  }

  dir(at: string, uid: number, mode: number): this {
    this.entries.set(at, { kind: 'directory', uid, mode });
    return this;
  }
  socket(at: string, uid: number): this {
    this.entries.set(at, { kind: 'socket', uid, mode: 0o600 });
    return this;
  }
  file(at: string, uid: number): this {
    this.entries.set(at, { kind: 'other', uid, mode: 0o644 });
    return this;
  }
  link(at: string, target: string, uid: number): this {
    this.entries.set(at, { kind: 'symlink', uid, mode: 0o777, target });
    return this;
  }
  lstat(at: string): PathInfo | undefined {
    return this.entries.get(at);
  }
  readlink(at: string): string {
    return this.entries.get(at)!.target!;
  }
  mkdir(at: string, mode: number): boolean {
    const racer = this.raced.get(at);
    if (racer) this.entries.set(at, racer);
    if (this.entries.has(at)) return false;
    this.entries.set(at, { kind: 'directory', uid: this.uid, mode: mode & ~this.umask });
    return true;
  }
  chmod(at: string, mode: number): void {
    const entry = this.entries.get(at)!;
    this.entries.set(at, { ...entry, mode });
    this.chmods.push(at);
  }
}

export function options(fs: SocketFs, uid = ME, extra: Partial<SocketCheckOptions> = {}): SocketCheckOptions {
  return { uid, field: 'admin_socket', fs, ...extra };
}

export function refusal(run: () => void): SigilError {
  try {
    run();
  } catch (err) {
    if (isSigilError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

/** A typical machine: / and /run root-owned 0755, /tmp root-owned 1777. */
export function machine(uid = ME, umask = 0o022): FakeFs {
  return new FakeFs(uid, umask).dir('/run', ROOT, 0o755).dir('/tmp', ROOT, 0o1777);
}
