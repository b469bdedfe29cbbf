import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../spiffe/clock.js';
import { formatSelector } from '../../../spiffe/selector.js';
import { execSince, readExecutable } from '../executable.js';
import { createWorkloadAttestor } from '../index.js';
import { groupLookup, passwdLookup } from './accounts.js';
import { createUnixAttestor } from './unix-attestor.js';

const PEER = { pid: 321, uid: 1000, gid: 100 };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fake /proc with one process whose exe links to a small binary. */
function fakeProc(binary = Buffer.from('#!/bin/true\nworkload v1\n')) {
  const root = mkdtempSync(path.join(tmpdir(), 'sigil-unix-'));
  dirs.push(root);
  const binPath = path.join(root, 'bin-web');
  writeFileSync(binPath, binary);
  const procRoot = path.join(root, 'proc');
  mkdirSync(path.join(procRoot, String(PEER.pid)), { recursive: true });
  writeFileSync(
    path.join(procRoot, String(PEER.pid), 'status'),
    'Name:\tweb\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t100 27 999 \nNgid:\t0\n',
  );
  symlinkSync(binPath, path.join(procRoot, String(PEER.pid), 'exe'));
  return { procRoot, binPath };
}

const names = (table: Record<number, string>) => async (id: number) => table[id];
const deps = (procRoot: string) => ({
  procRoot,
  lookupUserName: names({ 1000: 'alice' }),
  lookupGroupName: names({ 100: 'users', 27: 'sudo' }),
});

async function attest(config: unknown, procRoot: string): Promise<string[]> {
  const attestor = createUnixAttestor(config, deps(procRoot));
  return (await attestor.attest(PEER, new AbortController().signal)).map(formatSelector);
}

describe('unix workload attestor', () => {
  it('derives uid/gid from the peer credentials, groups from /proc status, and path + sha256 of the binary', async () => {
    const { procRoot, binPath } = fakeProc();
    const sha = createHash('sha256').update('#!/bin/true\nworkload v1\n').digest('hex');
    expect(await attest({}, procRoot)).toEqual([
      'unix:uid:1000',
      'unix:gid:100',
      'unix:user:alice',
      'unix:group:users',
      'unix:supplementary_gid:100',
      'unix:supplementary_group:users',
      'unix:supplementary_gid:27',
      'unix:supplementary_group:sudo',
      'unix:supplementary_gid:999',
      `unix:path:${binPath}`,
      `unix:sha256:${sha}`,
    ]);
  });

  it('leaves out sha256 for a binary above workload_size_limit, and path too without discover_workload_path', async () => {
    const { procRoot } = fakeProc(Buffer.alloc(2048));
    const limited = await attest({ workload_size_limit: 1024 }, procRoot);
    expect(limited.some((s) => s.startsWith('unix:path:'))).toBe(true);
    expect(limited.some((s) => s.startsWith('unix:sha256:'))).toBe(false);
    const noPath = await attest({ discover_workload_path: false }, procRoot);
    expect(noPath.some((s) => s.startsWith('unix:path:') || s.startsWith('unix:sha256:'))).toBe(false);
  });

  it('re-hashes a binary that changed once the re-hash interval has passed, and answers UNAVAILABLE before', async () => {
    const { procRoot, binPath } = fakeProc();
    const clock = new ManualClock();
    const attestor = createUnixAttestor({ rehash_interval: '30s' }, { ...deps(procRoot), clock });
    const shaOf = async () =>
      (await attestor.attest(PEER, new AbortController().signal)).find((s) => s.value.startsWith('sha256:'))!
        .value;
    const first = await shaOf();
    expect(await shaOf()).toBe(first);
    writeFileSync(binPath, 'workload v2, longer\n');
    await expect(shaOf()).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      reason: 'hash-budget',
      message: expect.stringMatching(
        /cannot hash its executable: not hashed: .*at most once per 30s; retry in/,
      ),
    });
    await clock.advance(30_000);
    expect(await shaOf()).toBe(
      `sha256:${createHash('sha256').update('workload v2, longer\n').digest('hex')}`,
    );
  });

  it("describes the executable recorded at connect time, and refuses once the process has exec'd another", async () => {
    const { procRoot, binPath } = fakeProc();
    const attestor = createUnixAttestor({}, deps(procRoot));
    const recorded = readExecutable(procRoot, PEER.pid);
    const selectors = await attestor.attest({ ...PEER, exe: recorded }, new AbortController().signal);
    expect(selectors.map(formatSelector)).toContain(`unix:path:${binPath}`);
    // The process execs another binary: same pid, new /proc/<pid>/exe.
    const other = path.join(path.dirname(binPath), 'bin-other');
    writeFileSync(other, 'other\n');
    rmSync(path.join(procRoot, String(PEER.pid), 'exe'));
    symlinkSync(other, path.join(procRoot, String(PEER.pid), 'exe'));
    await expect(
      attestor.attest({ ...PEER, exe: recorded }, new AbortController().signal),
    ).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: expect.stringContaining(`has exec'd ${other} (device`),
    });
    await expect(
      attestor.attest({ ...PEER, exe: { error: 'EACCES' } }, new AbortController().signal),
    ).rejects.toMatchObject({
      message: expect.stringContaining('could not be read when it connected: EACCES'),
    });
  });

  it('judges an exec by the file, not the path: a binary upgraded in place is still the same program', () => {
    const recorded = { path: '/usr/bin/web', dev: 2049n, ino: 77n };
    expect(execSince(recorded, { ...recorded, path: '/usr/bin/web (deleted)' })).toBeUndefined();
    expect(execSince(recorded, { ...recorded, ino: 78n })).toMatch(
      /^has exec'd \/usr\/bin\/web \(device 2049, inode 78\) since it connected running/,
    );
  });

  it('fails when the process is gone', async () => {
    const { procRoot } = fakeProc();
    const attestor = createUnixAttestor({}, deps(procRoot));
    await expect(attestor.attest({ ...PEER, pid: 999 }, new AbortController().signal)).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: expect.stringContaining('unix attestor: process 999: cannot read its status'),
    });
  });

  it('reads names from passwd- and group-format files by default', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'sigil-acct-'));
    dirs.push(root);
    writeFileSync(
      path.join(root, 'passwd'),
      '# comment\nroot:x:0:0:root:/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\n',
    );
    writeFileSync(path.join(root, 'group'), 'root:x:0:\nusers:x:100:alice\n');
    expect(await passwdLookup(path.join(root, 'passwd'))(1000)).toBe('alice');
    expect(await passwdLookup(path.join(root, 'passwd'))(1001)).toBeUndefined();
    expect(await groupLookup(path.join(root, 'group'))(100)).toBe('users');
    expect(await groupLookup(path.join(root, 'missing'))(100)).toBeUndefined();
  });
});

describe('unix attestor config', () => {
  it('reports every problem at once, by key, with the value found', () => {
    expect(() =>
      createUnixAttestor({
        discover_workload_path: 'yes',
        workload_size_limit: -1,
        sha: true,
        rehash_interval: '0s',
        hash_rate_limit: 1.5,
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: [
          'workload attestor "unix": config has 5 problems',
          '  sha: unknown key (valid: discover_workload_path, workload_size_limit, rehash_interval, hash_rate_limit)',
          '  discover_workload_path: must be true or false (got "yes")',
          '  workload_size_limit: must be a whole number of bytes, 0 or more (got "-1")',
          '  rehash_interval: "0s" must be greater than zero (examples: 90s, 30m, 1h)',
          '  hash_rate_limit: must be a whole number of bytes per second, 1 or more (got "1.5")',
        ].join('\n'),
      }),
    );
    expect(() => createUnixAttestor([])).toThrow(/\(root\): must be an object/);
    expect(() => createUnixAttestor(undefined)).not.toThrow();
  });

  it('is found by name, and an unknown name lists the valid ones', () => {
    expect(createWorkloadAttestor('unix', {}).name).toBe('unix');
    expect(() => createWorkloadAttestor('docker', {})).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: 'workload attestor "docker" is unknown (valid: unix)',
      }),
    );
  });
});
