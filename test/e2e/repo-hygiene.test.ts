// The lint step runs clean of warnings about its own configuration: a deprecated biome.json field
// is reported on every `npm run lint` and becomes an error in biome's next major version.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('biome.json', () => {
  it('uses no deprecated field', async () => {
    const biome = fileURLToPath(new URL('../../node_modules/.bin/biome', import.meta.url));
    // One small file is enough: the configuration is read and checked whatever is linted.
    const { stdout, stderr } = await exec(biome, ['check', 'test/e2e/repo-hygiene.test.ts'], { cwd: ROOT });
    expect(`${stdout}${stderr}`).not.toMatch(/deprecated/i);
  });
});
