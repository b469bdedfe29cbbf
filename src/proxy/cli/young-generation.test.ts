import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { capYoungGeneration } from './young-generation.js';

const flagsSet = (execArgv: string[], nodeOptions?: string): string[] => {
  const set: string[] = [];
  capYoungGeneration({ execArgv, nodeOptions }, (flag) => set.push(flag));
  return set;
};

describe('capYoungGeneration', () => {
  it('pins the growth factor when nobody sized the young generation', () => {
    expect(flagsSet([])).toEqual(['--semi-space-growth-factor=1']);
    // Other heap flags are not about the young generation.
    expect(flagsSet(['--max-old-space-size=256'], '--enable-source-maps --max-old-space-size=128')).toEqual([
      '--semi-space-growth-factor=1',
    ]);
  });

  it("leaves the operator's choice alone, from NODE_OPTIONS or node's own flags", () => {
    for (const nodeOptions of [
      '--max-semi-space-size=16',
      '--enable-source-maps --max_semi_space_size=8',
      '--min-semi-space-size=2',
      '--semi-space-growth-factor=2',
      '--max-heap-size=512',
      '--max-semi-space-size 4',
    ])
      expect(flagsSet([], nodeOptions), nodeOptions).toEqual([]);
    expect(flagsSet(['--max-semi-space-size=4'])).toEqual([]);
  });
});

// The V8 behaviour the cap relies on, checked on the node that runs the tests: a growth factor set at
// run time holds the young generation at its size, where --max-semi-space-size set then would not.
// test/support/global-setup.ts builds dist/ before any test runs.
const COMPILED = fileURLToPath(new URL('../../../dist/src/proxy/cli/young-generation.js', import.meta.url));

describe('the young generation in a real process', () => {
  const script = (cap: boolean) => `
    const v8 = await import('node:v8');
    const { capYoungGeneration } = await import(${JSON.stringify(COMPILED)});
    if (${cap}) capYoungGeneration({ execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS });
    // Objects that survive a scavenge or two, as a proxy's in-flight requests do: V8 grows the young
    // generation when much of it survives.
    let live = [];
    for (let i = 0; i < 1_000_000; i++) { live.push({ i, s: 'x' + i }); if (live.length > 50_000) live = []; }
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
  const MB = 1024 * 1024;

  it('stays at its initial size when capped, grows when not or when the operator says so', () => {
    expect(newSpaceBytes(true)).toBeLessThanOrEqual(2.5 * MB);
    expect(newSpaceBytes(false)).toBeGreaterThan(8 * MB);
    expect(newSpaceBytes(true, '--max-semi-space-size=8')).toBeGreaterThan(8 * MB);
  });
});
