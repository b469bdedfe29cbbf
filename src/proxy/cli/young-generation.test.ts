import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { capYoungGeneration, MAX_SEMI_SPACE_BYTES, type YoungGenerationControl } from './young-generation.js';

const MB = 1024 * 1024;

/** A young generation whose size the test sets, recording the growth factors set and GC listeners. */
function fakeHeap(initialBytes: number) {
  const heap = {
    bytes: initialBytes,
    factors: [] as number[],
    listeners: [] as Array<() => void>,
    gc(bytes: number) {
      heap.bytes = bytes;
      for (const listener of heap.listeners) listener();
    },
  };
  const control: YoungGenerationControl = {
    newSpaceBytes: () => heap.bytes,
    setGrowthFactor: (factor) => heap.factors.push(factor),
    afterGc: (listener) => {
      heap.listeners.push(listener);
      return () => heap.listeners.splice(heap.listeners.indexOf(listener), 1);
    },
  };
  return { heap, control };
}

describe('capYoungGeneration', () => {
  it('stops growth at the cap and allows it again once V8 shrank the young generation', () => {
    const { heap, control } = fakeHeap(2 * MB);
    const stop = capYoungGeneration({ execArgv: [], nodeOptions: undefined }, control);
    expect(stop).not.toBeNull();
    expect(heap.factors).toEqual([]);
    heap.gc(4 * MB);
    expect(heap.factors).toEqual([]);
    heap.gc(2 * MAX_SEMI_SPACE_BYTES);
    expect(heap.factors).toEqual([1]);
    heap.gc(2 * MAX_SEMI_SPACE_BYTES);
    expect(heap.factors).toEqual([1]);
    heap.gc(2 * MB);
    expect(heap.factors).toEqual([1, 2]);
    stop!();
    expect(heap.listeners).toEqual([]);
  });

  it("leaves the operator's choice alone, from NODE_OPTIONS or node's own flags", () => {
    for (const nodeOptions of [
      '--max-semi-space-size=16',
      '--enable-source-maps --max_semi_space_size=8',
      '--min-semi-space-size=2',
      '--semi-space-growth-factor=2',
      '--max-heap-size=512',
      '--max-semi-space-size 4',
    ]) {
      const { heap, control } = fakeHeap(2 * MAX_SEMI_SPACE_BYTES);
      expect(capYoungGeneration({ execArgv: [], nodeOptions }, control), nodeOptions).toBeNull();
      expect(heap.listeners).toEqual([]);
    }
    const { control } = fakeHeap(0);
    expect(
      capYoungGeneration({ execArgv: ['--max-semi-space-size=4'], nodeOptions: undefined }, control),
    ).toBeNull();
    // Other heap flags are not about the young generation.
    expect(
      capYoungGeneration(
        { execArgv: ['--max-old-space-size=256'], nodeOptions: '--max-old-space-size=128' },
        control,
      ),
    ).not.toBeNull();
  });
});

// test/support/global-setup.ts builds dist/ before any test runs.
const COMPILED = fileURLToPath(new URL('../../../dist/src/proxy/cli/young-generation.js', import.meta.url));

// The V8 behaviour the cap relies on, checked on the node that runs the tests: a growth factor set at
// run time holds the young generation, where --max-semi-space-size set then would not.
describe('the young generation in a real process', () => {
  const script = (cap: boolean) => `
    const v8 = await import('node:v8');
    const { capYoungGeneration } = await import(${JSON.stringify(COMPILED)});
    const stop = ${cap} ? capYoungGeneration({ execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS }) : null;
    // Objects that survive a scavenge or two, as a proxy's in-flight requests do (V8 grows the young
    // generation when much of it survives), allocated a batch per turn of the event loop as a server does.
    let live = [];
    for (let turn = 0; turn < 400; turn++) {
      for (let i = 0; i < 10_000; i++) { live.push({ i, s: 'x' + i }); if (live.length > 100_000) live = []; }
      await new Promise((resolve) => setImmediate(resolve));
    }
    stop?.();
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(String(space.space_size));`;
  const newSpaceBytes = (cap: boolean, nodeOptions = ''): number => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script(cap)], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: nodeOptions },
    });
    expect(run.stderr).toBe('');
    return Number(run.stdout);
  };

  it('stays at the cap when capped, grows past it when not or when the operator says so', () => {
    expect(newSpaceBytes(true)).toBeLessThanOrEqual(2 * MAX_SEMI_SPACE_BYTES);
    expect(newSpaceBytes(false)).toBeGreaterThan(2 * MAX_SEMI_SPACE_BYTES);
    expect(newSpaceBytes(true, '--max-semi-space-size=16')).toBeGreaterThan(2 * MAX_SEMI_SPACE_BYTES);
  });
});
