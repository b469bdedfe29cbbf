import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../spiffe/clock.js';
import { procProcessTable } from '../spiffe/data-dir-lock.js';
import { type Child, logTail, spawnChild } from './child.js';
import { ComponentFailed, StopRequested, Supervisor } from './supervisor.js';

let dir: string;
const started: Child[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-mesh-child-'));
});
afterEach(async () => {
  for (const child of started.splice(0)) await child.stop(100);
  rmSync(dir, { recursive: true, force: true });
});

function node(name: string, script: string) {
  return {
    name,
    argv: [process.execPath, '-e', script],
    logFile: path.join(dir, `${name}.log`),
    env: process.env,
  };
}

describe('spawnChild', () => {
  it('writes its output to its log, and the tail shows only the latest run', async () => {
    const first = spawnChild(node('app', 'console.log("first run"); process.exit(0)'), systemClock);
    await first.exited;
    const second = spawnChild(
      node('app', 'console.log("second run"); console.error("oops"); process.exit(3)'),
      systemClock,
    );
    expect(await second.exited).toEqual({ code: 3, signal: null });
    expect(second.hasExited()).toBe(true);
    expect(logTail(second.logFile)).toBe('second run\noops');
  });

  it('kills a child that ignores SIGTERM once the grace period is over', async () => {
    const stubborn = spawnChild(
      node(
        'stubborn',
        'process.on("SIGTERM", () => console.log("ignored")); console.log("up"); setInterval(() => {}, 1000)',
      ),
      systemClock,
    );
    started.push(stubborn);
    await waitForLog(stubborn.logFile, 'up');
    expect(await stubborn.stop(300)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(logTail(stubborn.logFile)).toContain('ignored');
  });
});

describe('Supervisor', () => {
  function supervisor(signal = new AbortController().signal) {
    return new Supervisor({
      clock: systemClock,
      runFile: path.join(dir, 'run.json'),
      processes: procProcessTable(),
      signal,
    });
  }

  it('fails a startup wait at once, naming the child, when a child dies', async () => {
    const s = supervisor();
    s.start(node('agent', 'setTimeout(() => process.exit(1), 200)'));
    const err = await s.guard(new Promise(() => {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComponentFailed);
    expect((err as ComponentFailed).child.name).toBe('agent');
    expect((err as Error).message).toBe('exited unexpectedly (exit code 1)');
    expect(s.halted.aborted).toBe(true);
    await s.stopAll();
  });

  it('ends waits with StopRequested when asked to stop, and stops children last-started first', async () => {
    const controller = new AbortController();
    const s = supervisor(controller.signal);
    const order: string[] = [];
    for (const name of ['server', 'agent', 'sidecar']) {
      const child = s.start(node(name, 'console.log("up"); setInterval(() => {}, 1000)'));
      void child.exited.then(() => order.push(name));
      await waitForLog(child.logFile, 'up');
    }
    const waiting = s.guard(new Promise(() => {})).catch((e: unknown) => e);
    controller.abort('SIGINT');
    const err = await waiting;
    expect(err).toBeInstanceOf(StopRequested);
    expect((err as StopRequested).reason).toBe('SIGINT');
    expect(await s.stopAll()).toEqual(['sidecar', 'agent', 'server']);
    expect(order).toEqual(['sidecar', 'agent', 'server']);
  });
});

async function waitForLog(file: string, text: string): Promise<void> {
  for (let i = 0; i < 100 && !logTail(file).includes(text); i++) await new Promise((r) => setTimeout(r, 50));
}
