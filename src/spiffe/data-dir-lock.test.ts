import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type DataDirLockOptions,
  lockDataDir,
  type ProcessTable,
  procProcessTable,
} from './data-dir-lock.js';
import { isSigilError } from './errors.js';

const BOOT = 'boot-1';

/** Processes by pid with their start times; anything else does not exist. */
function fakeProcesses(pid: number, running: Map<number, string>, bootId = BOOT): ProcessTable {
  return {
    pid,
    exists: (target) => running.has(target),
    startTime: (target) => running.get(target) ?? null,
    bootId: () => bootId,
  };
}

function claimFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('sigil.lock.'));
}

function refusal(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a refusal');
}

describe('lockDataDir', () => {
  let dir: string;
  let running: Map<number, string>;
  const as = (pid: number, extra: Partial<DataDirLockOptions> = {}): DataDirLockOptions => ({
    what: 'sigil-server',
    processes: fakeProcesses(pid, running),
    ...extra,
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sigil-lock-'));
    running = new Map([
      [100, '5000'],
      [200, '6000'],
    ]);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('claims a free directory with an owner-only file naming the holder', () => {
    const lock = lockDataDir(dir, as(100));
    expect(claimFiles(dir)).toEqual([path.basename(lock.file)]);
    expect(statSync(lock.file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toMatchObject({ pid: 100, what: 'sigil-server' });
  });

  it('refuses a second claimant while the holder runs, naming the directory, the holder and what to do', () => {
    lockDataDir(dir, as(100));
    const err = refusal(() => lockDataDir(dir, as(200, { what: 'sigil-agent' })));
    expect(isSigilError(err, 'ERR_DATA_DIR_LOCKED')).toBe(true);
    expect(err.message).toBe(
      `data_dir ${dir} is in use by sigil-server pid 100; stop it or use another --data-dir`,
    );
  });

  it('is free again after release, leaving one claim file', () => {
    lockDataDir(dir, as(100)).release();
    const lock = lockDataDir(dir, as(200));
    expect(claimFiles(dir)).toEqual([path.basename(lock.file)]);
    lock.release();
    lock.release();
    expect(claimFiles(dir)).toHaveLength(1);
    lockDataDir(dir, as(100));
  });

  it('takes over the claim of a holder that died without releasing it (kill -9)', () => {
    lockDataDir(dir, as(100));
    running.delete(100);
    const lock = lockDataDir(dir, as(200));
    expect(claimFiles(dir)).toEqual([path.basename(lock.file)]);
  });

  it('takes over a claim whose pid now belongs to a younger process', () => {
    lockDataDir(dir, as(100));
    running.set(100, '9999');
    expect(() => lockDataDir(dir, as(200))).not.toThrow();
  });

  it('takes over a claim written before the machine rebooted', () => {
    lockDataDir(dir, as(100));
    // Same pid and start time after a reboot is possible for early-boot services.
    const afterReboot = { ...as(200), processes: fakeProcesses(200, running, 'boot-2') };
    expect(() => lockDataDir(dir, afterReboot)).not.toThrow();
  });

  it('replaces a claim file it did not write', () => {
    writeFileSync(path.join(dir, 'sigil.lock.7'), 'garbage');
    const lock = lockDataDir(dir, as(100));
    expect(claimFiles(dir)).toEqual([path.basename(lock.file)]);
    expect(path.basename(lock.file)).toBe('sigil.lock.8');
  });

  it('lets exactly one of two claimants win when both judge the same stale claim free', () => {
    lockDataDir(dir, as(300));
    let raced = false;
    const slow: ProcessTable = {
      ...fakeProcesses(100, running),
      // While the slow claimant looks at the stale holder, a fast one takes the directory over.
      exists: (pid) => {
        if (pid === 300 && !raced) {
          raced = true;
          lockDataDir(dir, as(200));
        }
        return running.has(pid);
      },
    };
    const err = refusal(() => lockDataDir(dir, { what: 'sigil-server', processes: slow }));
    expect(raced).toBe(true);
    expect(err.message).toContain('in use by sigil-server pid 200');
    expect(claimFiles(dir)).toHaveLength(1);
  });

  it('reports a directory it cannot use as a config problem', () => {
    const err = refusal(() => lockDataDir(path.join(dir, 'missing'), as(100)));
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect(err.message).toContain('cannot claim it');
  });
});

describe('procProcessTable', () => {
  it('reads start times from /proc and tells live pids from ended ones', () => {
    const table = procProcessTable();
    expect(table.startTime(process.pid)).toMatch(/^\d+$/);
    expect(table.startTime(process.pid)).toBe(table.startTime(process.pid));
    expect(table.exists(process.pid)).toBe(true);
    const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const endedPid = Number(ended.stdout.toString());
    expect(table.exists(endedPid)).toBe(false);
    expect(table.bootId()).toMatch(/^[0-9a-f-]{36}$/);
  });
});
