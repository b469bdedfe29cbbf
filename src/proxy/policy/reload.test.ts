import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../spiffe/clock.js';
import { isSigilError, type SigilError } from '../../spiffe/errors.js';
import { untilPolled } from '../file-watch.test-support.js';
import type { PolicySet } from './model.js';
import { type PolicyWatch, watchPolicyFile } from './reload.js';

const POLL_MS = 1_000;

const policyNamed = (name: string) => `policies:\n  - name: ${name}\n    action: DENY\n    rules: [{}]\n`;
const BROKEN = 'policies:\n  - name: broken\n    action: deny\n    rules: [{}]\n';

let dir: string;
let file: string;
let watch: PolicyWatch | null;
let clock: ManualClock;
let changes: PolicySet[];
let errors: SigilError[];
let logs: string[];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-policy-'));
  file = path.join(dir, 'policy.yaml');
  watch = null;
  clock = new ManualClock();
  changes = [];
  errors = [];
  logs = [];
});

afterEach(() => {
  watch?.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(options: { clock?: typeof systemClock; pollIntervalMs?: number; debounceMs?: number } = {}) {
  watch = watchPolicyFile(file, {
    onChange: (set) => changes.push(set),
    onError: (err) => errors.push(err),
    clock: options.clock ?? clock,
    pollIntervalMs: options.pollIntervalMs ?? POLL_MS,
    debounceMs: options.debounceMs ?? 50,
    logger: {
      info: (_fields, message) => logs.push(`info ${message}`),
      warn: (_fields, message) => logs.push(`warn ${message}`),
    },
  });
  return watch;
}

const until = (done: () => boolean) => untilPolled(clock, POLL_MS, done);

const names = (set: PolicySet) => set.policies.map((p) => p.name);

describe('watchPolicyFile', () => {
  it('loads the file at start', () => {
    writeFileSync(file, policyNamed('first'));
    expect(names(start().current())).toEqual(['first']);
  });

  it('throws on a broken initial file', () => {
    writeFileSync(file, BROKEN);
    expect(() => start()).toThrow(expect.objectContaining({ code: 'ERR_POLICY_INVALID' }));
    expect(() => start()).toThrow(/policies\[0\]\.action: must be one of ALLOW, DENY, AUDIT \(got "deny"\)/);
  });

  it('throws on a missing initial file', () => {
    expect(() => start()).toThrow(/could not be read \(ENOENT\)/);
  });

  it('applies a valid change', async () => {
    writeFileSync(file, policyNamed('first'));
    const w = start();
    writeFileSync(file, policyNamed('second'));
    await until(() => changes.length > 0);
    expect(changes.map(names)).toEqual([['second']]);
    expect(names(w.current())).toEqual(['second']);
    expect(logs).toContain('info Policy reloaded');
  });

  it('rejects a broken change, keeps the previous set, and recovers on the next good one', async () => {
    writeFileSync(file, policyNamed('first'));
    const w = start();
    const before = w.current();
    writeFileSync(file, BROKEN);
    await until(() => errors.length > 0);
    expect(isSigilError(errors[0], 'ERR_POLICY_INVALID')).toBe(true);
    expect(errors[0]!.message).toContain(
      'policies[0].action: must be one of ALLOW, DENY, AUDIT (got "deny")',
    );
    expect(w.current()).toBe(before);
    expect(changes).toEqual([]);
    expect(logs).toContain('warn Policy reload rejected; keeping the previous policy');

    // The same broken content is reported once, however many polls see it.
    await clock.advance(POLL_MS * 3);
    await sleep(20);
    expect(errors).toHaveLength(1);

    writeFileSync(file, policyNamed('fixed'));
    await until(() => changes.length > 0);
    expect(names(w.current())).toEqual(['fixed']);
  });

  it('follows a rename-on-save', async () => {
    writeFileSync(file, policyNamed('first'));
    const w = start();
    const temp = path.join(dir, '.policy.yaml.swp');
    writeFileSync(temp, policyNamed('renamed'));
    renameSync(temp, file);
    await until(() => changes.length > 0);
    expect(names(w.current())).toEqual(['renamed']);

    // The watch still works on the new inode.
    writeFileSync(`${temp}2`, policyNamed('again'));
    renameSync(`${temp}2`, file);
    await until(() => changes.length > 1);
    expect(names(w.current())).toEqual(['again']);
  });

  it('reports a deleted file once and keeps the previous set', async () => {
    writeFileSync(file, policyNamed('first'));
    const w = start();
    unlinkSync(file);
    await until(() => errors.length > 0);
    expect(errors[0]!.message).toBe(`policy file ${file} could not be read (ENOENT)`);
    await clock.advance(POLL_MS * 3);
    await sleep(20);
    expect(errors).toHaveLength(1);
    expect(names(w.current())).toEqual(['first']);
  });

  it('picks up a change through fs.watch alone, without polling', async () => {
    writeFileSync(file, policyNamed('first'));
    const w = start({ clock: systemClock, pollIntervalMs: 3_600_000, debounceMs: 20 });
    writeFileSync(file, policyNamed('watched'));
    for (let i = 0; i < 200 && changes.length === 0; i++) await sleep(10);
    expect(names(w.current())).toEqual(['watched']);
  });

  it('stops after close', async () => {
    writeFileSync(file, policyNamed('first'));
    const w = start();
    w.close();
    writeFileSync(file, policyNamed('second'));
    await clock.advance(POLL_MS * 3);
    await sleep(50);
    expect(changes).toEqual([]);
    expect(names(w.current())).toEqual(['first']);
    expect(clock.pendingTimers).toBe(0);
  });
});
