// The hashing bound (issue 9, item 8d): a binary whose mtime changes on every call used to be read
// in full on every call. Real files, a ManualClock for the budget.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../spiffe/clock.js';
import { BinaryHasher } from './binary-hash.js';
import { HashBudget } from './hash-budget.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(content: string | Buffer): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigil-hash-'));
  dirs.push(dir);
  const file = path.join(dir, 'bin');
  writeFileSync(file, content);
  return file;
}

const sha = (content: string | Buffer) => createHash('sha256').update(content).digest('hex');

function hasher(options: { rehashIntervalMs?: number; bytesPerSecond?: number; burstBytes?: number } = {}) {
  const clock = new ManualClock();
  const budget = new HashBudget({
    clock,
    rehashIntervalMs: options.rehashIntervalMs ?? 30_000,
    bytesPerSecond: options.bytesPerSecond ?? 1024 * 1024,
    burstBytes: options.burstBytes ?? 16 * 1024 * 1024,
  });
  return { clock, hasher: new BinaryHasher(64 * 1024 * 1024, budget) };
}

/** Moves mtime forward by `step` seconds, as `touch` would. */
function touch(file: string, step: number): void {
  const at = new Date(statSync(file).mtimeMs + step * 1000);
  utimesSync(file, at, at);
}

describe('BinaryHasher', () => {
  it('hashes a file whose mtime changes on every call at most once per re-hash interval', async () => {
    const content = Buffer.alloc(256 * 1024, 7);
    const file = tempFile(content);
    const { clock, hasher: h } = hasher({ rehashIntervalMs: 30_000 });
    let served = 0;
    let refused = 0;
    // 3 minutes of a call every second, the binary touched before each.
    for (let call = 0; call < 180; call++) {
      touch(file, 1);
      try {
        expect(await h.hash(file)).toBe(sha(content));
        served++;
      } catch (err) {
        expect(err).toMatchObject({ code: 'ERR_UNAVAILABLE', reason: 'hash-budget' });
        refused++;
      }
      await clock.advance(1000);
    }
    // One read per 30 s window: the first call, then every 30th.
    expect(h.stats.hashes).toBe(6);
    expect(h.stats.bytesHashed).toBe(6 * content.length);
    expect(served).toBe(6);
    expect(refused).toBe(174);
  });

  it('serves an unchanged binary from cache without touching the budget', async () => {
    const file = tempFile('v1');
    const { hasher: h } = hasher();
    for (let i = 0; i < 50; i++) expect(await h.hash(file)).toBe(sha('v1'));
    expect(h.stats.hashes).toBe(1);
  });

  it('never answers with a stale hash: content rewritten with its old mtime put back is hashed again', async () => {
    const file = tempFile('genuine binary');
    const { clock, hasher: h } = hasher({ rehashIntervalMs: 1000 });
    expect(await h.hash(file)).toBe(sha('genuine binary'));
    const { atime, mtime } = statSync(file);
    writeFileSync(file, 'trojan  binary'); // same size
    utimesSync(file, atime, mtime); // the owner can set mtime back; ctime moves regardless
    await expect(h.hash(file)).rejects.toMatchObject({ reason: 'hash-budget' });
    await clock.advance(1000);
    expect(await h.hash(file)).toBe(sha('trojan  binary'));
  });

  it('reads a file once for concurrent requests of the same content', async () => {
    const content = Buffer.alloc(4 * 1024 * 1024, 1);
    const file = tempFile(content);
    const { hasher: h } = hasher();
    const digests = await Promise.all(Array.from({ length: 20 }, () => h.hash(file)));
    expect(new Set(digests)).toEqual(new Set([sha(content)]));
    expect(h.stats.hashes).toBe(1);
  });

  it('refuses new binaries once the shared byte budget is spent, until it refills', async () => {
    const { clock, hasher: h } = hasher({ bytesPerSecond: 1024, burstBytes: 3000 });
    const files = [
      tempFile(Buffer.alloc(1500, 1)),
      tempFile(Buffer.alloc(1500, 2)),
      tempFile(Buffer.alloc(1500, 3)),
    ];
    await h.hash(files[0]!);
    await h.hash(files[1]!);
    await expect(h.hash(files[2]!)).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: expect.stringContaining("the agent's hashing budget (1024 bytes/s) is spent"),
    });
    await clock.advance(1500);
    await expect(h.hash(files[2]!)).resolves.toBe(sha(Buffer.alloc(1500, 3)));
    expect(h.stats.hashes).toBe(2 + 1);
  });

  it("refuses a file that is not the expected device and inode (the process exec'd)", async () => {
    const file = tempFile('x');
    const { hasher: h } = hasher();
    const { dev, ino } = statSync(file, { bigint: true });
    await expect(h.hash(file, { dev, ino })).resolves.toBe(sha('x'));
    await expect(h.hash(file, { dev, ino: ino + 1n })).rejects.toMatchObject({ reason: 'exec' });
  });
});
