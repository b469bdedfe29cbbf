import { describe, expect, it } from 'vitest';
import { prepareSocketDir } from './socket-dir.js';
import { type FakeFs, ME, machine, OTHER, options, ROOT, refusal } from './socket-dir.test-support.js';

describe('prepareSocketDir', () => {
  it('creates missing directories, the last with the kind mode and parents 0755, exactly despite the umask', () => {
    const fs = machine(ROOT, 0o077);
    prepareSocketDir('/run/sigil-agent/private/admin.sock', 'private', options(fs, ROOT));
    prepareSocketDir('/run/sigil-agent/public/api.sock', 'public', options(fs, ROOT));
    expect(fs.lstat('/run/sigil-agent')).toEqual({ kind: 'directory', uid: ROOT, mode: 0o755 });
    expect(fs.lstat('/run/sigil-agent/private')).toEqual({ kind: 'directory', uid: ROOT, mode: 0o700 });
    expect(fs.lstat('/run/sigil-agent/public')).toEqual({ kind: 'directory', uid: ROOT, mode: 0o755 });
    expect(fs.chmods).toEqual(['/run/sigil-agent', '/run/sigil-agent/private', '/run/sigil-agent/public']);
  });

  it('creates a per-user directory under a sticky, root-owned /tmp', () => {
    const fs = machine();
    prepareSocketDir('/tmp/sigil-server-1000/private/admin.sock', 'private', options(fs));
    expect(fs.lstat('/tmp/sigil-server-1000/private')).toMatchObject({ uid: ME, mode: 0o700 });
  });

  it('accepts existing directories of ours without touching them, whatever their (safe) mode', () => {
    const fs = machine().dir('/run/sigil', ROOT, 0o755).dir('/run/sigil/mine', ME, 0o755);
    prepareSocketDir('/run/sigil/mine/admin.sock', 'private', options(fs));
    expect(fs.chmods).toEqual([]);
    expect(fs.lstat('/run/sigil/mine')!.mode).toBe(0o755);
  });

  it.each([
    {
      name: 'a socket directory another user created first',
      tree: (fs: FakeFs) => fs.dir('/tmp/sigil-server-1000', OTHER, 0o700),
      socket: '/tmp/sigil-server-1000/admin.sock',
      reason: 'owner',
      message: [
        'admin_socket: socket directory "/tmp/sigil-server-1000" belongs to someone else (owner uid 1001, mode 0700), not to uid 1000 (this process)',
        'choose another path with admin_socket',
      ],
    },
    {
      name: 'a socket directory of root, for a daemon that is not root',
      tree: (fs: FakeFs) => fs.dir('/run/sigil-server', ROOT, 0o755),
      socket: '/run/sigil-server/admin.sock',
      reason: 'owner',
      message: ['"/run/sigil-server" belongs to someone else (owner uid 0, mode 0755)'],
    },
    {
      name: 'a group-writable socket directory',
      tree: (fs: FakeFs) => fs.dir('/run/sigil', ME, 0o770),
      socket: '/run/sigil/admin.sock',
      reason: 'writable',
      message: [
        'socket directory "/run/sigil" is writable by its group (owner uid 1000, mode 0770)',
        'chmod go-w /run/sigil',
      ],
    },
    {
      name: 'a world-writable socket directory',
      tree: (fs: FakeFs) => fs.dir('/run/sigil', ME, 0o777),
      socket: '/run/sigil/admin.sock',
      reason: 'writable',
      message: ['is writable by every user (owner uid 1000, mode 0777)'],
    },
    {
      name: 'a sticky shared directory of ours as the socket directory itself',
      tree: (fs: FakeFs) => fs.dir('/scratch', ME, 0o1777),
      socket: '/scratch/admin.sock',
      reason: 'writable',
      message: [
        'socket directory "/scratch" is writable by every user',
        'put the socket in a directory of your own',
      ],
    },
    {
      name: 'an ancestor owned by another user',
      tree: (fs: FakeFs) => fs.dir('/srv', OTHER, 0o755),
      socket: '/srv/sigil/admin.sock',
      reason: 'owner',
      message: [
        'directory "/srv" belongs to someone else (owner uid 1001, mode 0755), not to uid 1000 (you) or root',
      ],
    },
    {
      name: 'a world-writable ancestor without the sticky bit',
      tree: (fs: FakeFs) => fs.dir('/shared', ROOT, 0o777),
      socket: '/shared/sigil/admin.sock',
      reason: 'writable',
      message: ['directory "/shared" is writable by every user (owner uid 0, mode 0777)'],
    },
    {
      name: 'a sticky world-writable ancestor that root does not own',
      tree: (fs: FakeFs) => fs.dir('/scratch', ME, 0o1777),
      socket: '/scratch/sigil/admin.sock',
      reason: 'writable',
      message: [
        'directory "/scratch" is writable by every user (owner uid 1000, mode 1777)',
        'a directory of your own',
      ],
    },
    {
      name: 'a file where a directory should be',
      tree: (fs: FakeFs) => fs.file('/run/sigil', ME),
      socket: '/run/sigil/admin.sock',
      reason: 'not-directory',
      message: ['"/run/sigil" is on the socket\'s path but is not a directory'],
    },
    {
      name: 'a symlink owned by another user',
      tree: (fs: FakeFs) => fs.link('/tmp/sigil-server-1000', '/run', OTHER),
      socket: '/tmp/sigil-server-1000/admin.sock',
      reason: 'owner',
      message: ['symlink "/tmp/sigil-server-1000" belongs to someone else (owner uid 1001'],
    },
    {
      name: 'a symlink of ours pointing into a directory another user owns',
      tree: (fs: FakeFs) => fs.dir('/tmp/evil', OTHER, 0o755).link('/tmp/sigil-server-1000', '/tmp/evil', ME),
      socket: '/tmp/sigil-server-1000/admin.sock',
      reason: 'owner',
      message: ['socket directory "/tmp/evil" belongs to someone else'],
    },
    {
      name: 'a symlink loop',
      tree: (fs: FakeFs) => fs.link('/tmp/a', '/tmp/b', ME).link('/tmp/b', 'a', ME),
      socket: '/tmp/a/admin.sock',
      reason: 'symlink-loop',
      message: ['has more than 40 symlinks on its path'],
    },
  ])('refuses $name', ({ tree, socket, reason, message }) => {
    const fs = tree(machine());
    const err = refusal(() => prepareSocketDir(socket, 'private', options(fs)));
    expect(err).toMatchObject({ code: 'ERR_SOCKET_UNSAFE', field: 'admin_socket', reason });
    for (const part of message) expect(err.message).toContain(part);
    expect(fs.chmods).toEqual([]);
  });

  it('judges what a racing user created between our look and our mkdir, and refuses it', () => {
    const fs = machine();
    fs.raced.set('/tmp/sigil-server-1000', { kind: 'directory', uid: OTHER, mode: 0o777 });
    const err = refusal(() =>
      prepareSocketDir('/tmp/sigil-server-1000/private/a.sock', 'private', options(fs)),
    );
    expect(err).toMatchObject({ code: 'ERR_SOCKET_UNSAFE', reason: 'owner' });
    expect(fs.chmods).toEqual([]);
  });

  it('follows a safe symlink (as /var/run -> /run) and creates the directories at its target', () => {
    const fs = machine(ROOT).dir('/var', ROOT, 0o755).link('/var/run', '/run', ROOT);
    prepareSocketDir('/var/run/sigil-agent/public/api.sock', 'public', options(fs, ROOT));
    expect(fs.lstat('/run/sigil-agent/public')).toEqual({ kind: 'directory', uid: ROOT, mode: 0o755 });
  });

  it('resolves relative link targets and .. against the real path, as the kernel does', () => {
    const fs = machine()
      .dir('/run/a', ROOT, 0o755)
      .dir('/run/b', ME, 0o700)
      .link('/run/a/here', '../b', ROOT);
    prepareSocketDir('/run/a/here/admin.sock', 'private', options(fs));
    const err = refusal(() => prepareSocketDir('/run/b/../a/admin.sock', 'private', options(fs)));
    expect(err.message).toContain('socket directory "/run/a" belongs to someone else');
  });

  it('logs a refusal before throwing it', () => {
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = {
      warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
    };
    const fs = machine().dir('/tmp/x', OTHER, 0o700);
    refusal(() => prepareSocketDir('/tmp/x/a.sock', 'private', options(fs, ME, { logger })));
    expect(warnings).toEqual([
      {
        message: 'Unsafe socket path refused',
        fields: { field: 'admin_socket', reason: 'owner', err: expect.stringContaining('"/tmp/x"') },
      },
    ]);
  });

  it('reports a directory it cannot create as a config error naming the path', () => {
    const fs = machine();
    fs.mkdir = () => {
      throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    };
    const err = refusal(() => prepareSocketDir('/run/sigil-server/private/a.sock', 'private', options(fs)));
    expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID', field: 'admin_socket' });
    expect(err.message).toContain('cannot create socket directory "/run/sigil-server": EACCES');
  });
});
