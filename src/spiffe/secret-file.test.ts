import { chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensurePrivateDir } from './secret-file.js';

const NOBODY = 65534;
const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});
const tempRoot = () => {
  const root = mkdtempSync(path.join(tmpdir(), 'sigil-secret-dir-'));
  roots.push(root);
  return root;
};
const modeOf = (dir: string) => statSync(dir).mode & 0o777;

describe('ensurePrivateDir', () => {
  it('creates a missing directory owner-only and tightens one of ours', () => {
    const created = path.join(tempRoot(), 'a', 'keys');
    ensurePrivateDir(created);
    expect(modeOf(created)).toBe(0o700);

    const loose = path.join(tempRoot(), 'loose');
    mkdirSync(loose, { mode: 0o755 });
    ensurePrivateDir(loose);
    expect(modeOf(loose)).toBe(0o700);
  });

  it("refuses another user's directory and leaves it as it was", () => {
    const theirs = path.join(tempRoot(), 'theirs');
    mkdirSync(theirs, { mode: 0o755 });
    chownSync(theirs, NOBODY, NOBODY);
    expect(() => ensurePrivateDir(theirs, 0)).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining(`belongs to uid ${NOBODY}, not to uid 0 (this process)`),
      }),
    );
    expect(modeOf(theirs)).toBe(0o755);
  });
});
