// checkSocketForClient on an in-memory tree, then both checks on the real file system (tests run
// as root, so they can hand files to nobody).
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkSocketForClient, prepareSocketDir, type SocketCheckOptions } from './socket-dir.js';
import { type FakeFs, ME, machine, OTHER, ROOT, refusal } from './socket-dir.test-support.js';

describe('checkSocketForClient', () => {
  const client = (fs: FakeFs, socket: string, uid = ME) =>
    checkSocketForClient(socket, { uid, field: '--admin-socket', fs });

  it("accepts our own socket in our own directory, and root's socket in root's", () => {
    const fs = machine()
      .dir('/tmp/sigil-server-1000', ME, 0o755)
      .dir('/tmp/sigil-server-1000/private', ME, 0o700);
    fs.socket('/tmp/sigil-server-1000/private/admin.sock', ME);
    fs.dir('/run/sigil-agent', ROOT, 0o755).dir('/run/sigil-agent/public', ROOT, 0o755);
    fs.socket('/run/sigil-agent/public/api.sock', ROOT);
    expect(() => client(fs, '/tmp/sigil-server-1000/private/admin.sock')).not.toThrow();
    expect(() => client(fs, '/run/sigil-agent/public/api.sock')).not.toThrow();
  });

  it("trusts a daemon's own user only when the client names it", () => {
    const fs = machine()
      .dir('/tmp/sigil-agent-1001', OTHER, 0o755)
      .dir('/tmp/sigil-agent-1001/public', OTHER, 0o755);
    fs.socket('/tmp/sigil-agent-1001/public/api.sock', OTHER);
    const socket = '/tmp/sigil-agent-1001/public/api.sock';
    expect(() => client(fs, socket)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_UNSAFE', reason: 'owner' }),
    );
    expect(() =>
      checkSocketForClient(socket, { uid: ME, owner: OTHER, field: 'workload_api', fs }),
    ).not.toThrow();
    expect(() => checkSocketForClient(socket, { uid: ME, owner: 4242, field: 'workload_api', fs })).toThrow(
      expect.objectContaining({
        message: expect.stringContaining("not to uid 1000 (you), uid 4242 (the daemon's user) or root"),
      }),
    );
  });

  it('says nothing when the socket is missing: the connection reports ENOENT itself', () => {
    expect(() => client(machine(), '/run/sigil-server/private/admin.sock')).not.toThrow();
  });

  it.each([
    {
      name: 'a socket planted by another user',
      tree: (fs: FakeFs) => fs.dir('/run/s', ROOT, 0o755).socket('/run/s/admin.sock', OTHER),
      socket: '/run/s/admin.sock',
      reason: 'owner',
      message:
        'socket "/run/s/admin.sock" belongs to someone else (owner uid 1001, mode 0600), not to uid 1000 (you) or root',
    },
    {
      name: 'a socket in a directory another user owns',
      tree: (fs: FakeFs) =>
        fs.dir('/tmp/sigil-server', OTHER, 0o755).socket('/tmp/sigil-server/admin.sock', ME),
      socket: '/tmp/sigil-server/admin.sock',
      reason: 'owner',
      message: 'directory "/tmp/sigil-server" belongs to someone else',
    },
    {
      name: 'a socket straight in a sticky shared directory',
      tree: (fs: FakeFs) => fs.socket('/tmp/admin.sock', ME),
      socket: '/tmp/admin.sock',
      reason: 'writable',
      message: 'socket directory "/tmp" is writable by every user',
    },
    {
      name: 'a socket in a group-writable directory',
      tree: (fs: FakeFs) => fs.dir('/run/s', ME, 0o775).socket('/run/s/admin.sock', ME),
      socket: '/run/s/admin.sock',
      reason: 'writable',
      message: 'directory "/run/s" is writable by its group',
    },
    {
      name: 'something that is not a socket',
      tree: (fs: FakeFs) => fs.dir('/run/s', ME, 0o700).file('/run/s/admin.sock', ME),
      socket: '/run/s/admin.sock',
      reason: 'not-socket',
      message: '"/run/s/admin.sock" is not a socket',
    },
    {
      name: 'a link to the socket that another user owns',
      tree: (fs: FakeFs) =>
        fs
          .dir('/run/s', ME, 0o700)
          .socket('/run/s/real.sock', ME)
          .link('/tmp/admin.sock', '/run/s/real.sock', OTHER),
      socket: '/tmp/admin.sock',
      reason: 'owner',
      message: 'symlink "/tmp/admin.sock" belongs to someone else',
    },
  ])('refuses $name', ({ tree, socket, reason, message }) => {
    const err = refusal(() => client(tree(machine()), socket));
    expect(err).toMatchObject({ code: 'ERR_SOCKET_UNSAFE', field: '--admin-socket', reason });
    expect(err.message).toContain(message);
  });

  it('follows a link of ours to a safe socket', () => {
    const fs = machine()
      .dir('/run/s', ME, 0o700)
      .socket('/run/s/real.sock', ME)
      .link('/tmp/admin.sock', '/run/s/real.sock', ME);
    expect(() => client(fs, '/tmp/admin.sock')).not.toThrow();
  });

  it('looks at each path once, the directory holding the socket included', () => {
    const fs = machine()
      .dir('/run/s', ME, 0o700)
      .socket('/run/s/real.sock', ME)
      .link('/tmp/admin.sock', '/run/s/real.sock', ME);
    const seen: string[] = [];
    const lstat = fs.lstat.bind(fs);
    fs.lstat = (at) => {
      seen.push(at);
      return lstat(at);
    };
    client(fs, '/tmp/admin.sock');
    expect(seen).toEqual(['/', '/tmp', '/tmp/admin.sock', '/run', '/run/s', '/run/s/real.sock']);
  });
});

describe('on the real file system (tests run as root)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-socket-dir-'));
    dirs.push(dir);
    return dir;
  };
  const real = (extra: Partial<SocketCheckOptions> = {}): SocketCheckOptions => ({
    uid: 0,
    field: 'admin_socket',
    ...extra,
  });

  it('creates nested directories with exact modes, and accepts them on the next start', () => {
    const root = tempDir();
    const socket = path.join(root, 'sigil-agent', 'private', 'admin.sock');
    prepareSocketDir(socket, 'private', real());
    expect(statSync(path.join(root, 'sigil-agent')).mode & 0o7777).toBe(0o755);
    expect(statSync(path.dirname(socket)).mode & 0o7777).toBe(0o700);
    prepareSocketDir(socket, 'private', real());
  });

  it('refuses a directory chowned to nobody, and one made group-writable', () => {
    const root = tempDir();
    const planted = path.join(root, 'planted');
    mkdirSync(planted, { mode: 0o700 });
    chownSync(planted, 65534, 65534);
    expect(refusal(() => prepareSocketDir(path.join(planted, 'a.sock'), 'private', real()))).toMatchObject({
      code: 'ERR_SOCKET_UNSAFE',
      reason: 'owner',
    });
    const loose = path.join(root, 'loose');
    mkdirSync(loose);
    chmodSync(loose, 0o770);
    expect(refusal(() => prepareSocketDir(path.join(loose, 'a.sock'), 'private', real()))).toMatchObject({
      reason: 'writable',
    });
    expect(statSync(loose).mode & 0o777).toBe(0o770);
  });

  it('follows a real symlink and refuses a real socket of another user', async () => {
    const root = tempDir();
    const target = path.join(root, 'target');
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, path.join(root, 'link'));
    prepareSocketDir(path.join(root, 'link', 'a.sock'), 'private', real());

    const socket = path.join(target, 'a.sock');
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      checkSocketForClient(path.join(root, 'link', 'a.sock'), real());
      chownSync(socket, 65534, 65534);
      expect(refusal(() => checkSocketForClient(socket, real()))).toMatchObject({ reason: 'owner' });
      // A client that is not root trusts root's sockets, never a third user's.
      expect(refusal(() => checkSocketForClient(socket, real({ uid: 1000 })))).toMatchObject({
        reason: 'owner',
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
