import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../spiffe/clock.js';
import { procProcessTable } from '../spiffe/data-dir-lock.js';
import { readRunRecord, removeRunRecord, stopLeftovers, writeRunRecord } from './run-record.js';

let dir: string;
const spawned: ChildProcess[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-mesh-record-'));
});
afterEach(() => {
  for (const child of spawned.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A process like the children a killed mesh leaves: detached, in its own group. */
function orphanLike(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    detached: true,
    stdio: 'ignore',
  });
  spawned.push(child);
  return child;
}

const isAlive = (pid: number) => procProcessTable().exists(pid);

describe('stopLeftovers', () => {
  it('stops what a killed run recorded, but never a pid that now belongs to another process', async () => {
    const leftover = orphanLike();
    const reused = orphanLike();
    const table = procProcessTable();
    const file = path.join(dir, 'run.json');
    writeRunRecord(file, [
      { name: 'server', pid: leftover.pid!, startTime: table.startTime(leftover.pid!) },
      // Same pid, other start time: the kernel gave the pid to a new process since.
      { name: 'agent', pid: reused.pid!, startTime: '1' },
      // No start time to compare: proves nothing, left alone.
      { name: 'app', pid: reused.pid!, startTime: null },
    ]);
    const exited = new Promise((resolve) => leftover.once('exit', resolve));
    const stopped = await stopLeftovers(readRunRecord(file), {
      processes: table,
      clock: systemClock,
      graceMs: 2_000,
    });
    expect(stopped.map((p) => p.name)).toEqual(['server']);
    await exited;
    expect(isAlive(reused.pid!)).toBe(true);
    removeRunRecord(file);
    expect(readRunRecord(file)).toEqual([]);
  });

  it('reads nothing from a torn or foreign record', () => {
    const file = path.join(dir, 'run.json');
    writeFileSync(file, '{"processes": [{"name": "x", "pid": 1, "startTime": "5"}, {"name": 3}');
    expect(readRunRecord(file)).toEqual([]);
    writeFileSync(
      file,
      JSON.stringify({ processes: [{ name: 'init', pid: 1, startTime: '5' }, { pid: 'x' }] }),
    );
    expect(readRunRecord(file)).toEqual([]);
  });
});
