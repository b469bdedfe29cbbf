// Once per run. E2E tests start the compiled CLI (bin/ -> dist/), so make sure dist/ matches src/
// first. Then every temp dir of the run goes under one run directory (TMPDIR, inherited by every
// worker and child process), and teardown fails the run if tests left anything there or in the
// checkout: a server's data dir holds CA keys and a SQLite store, and must not outlive its test.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Made by the run itself, not by tests. */
const CHECKOUT_OWN = new Set(['.test-results', 'dist', 'node_modules']);

export default function setup(): () => void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });

  const outerTmp = process.env.TMPDIR;
  // Short, as socket paths under it must stay within 107 bytes; sticky and open to all like /tmp,
  // since tests run workloads as other uids.
  const runDir = mkdtempSync(path.join(tmpdir(), 'st-'));
  chmodSync(runDir, 0o1777);
  process.env.TMPDIR = runDir;
  const checkoutBefore = new Set(readdirSync(root));

  return () => {
    if (outerTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = outerTmp;
    const leftInTmp = readdirSync(runDir);
    rmSync(runDir, { recursive: true, force: true });
    const leftInCheckout = readdirSync(root).filter((n) => !checkoutBefore.has(n) && !CHECKOUT_OWN.has(n));
    const problems = [
      ...leftInTmp.map((n) => `temp dir ${n} (under os.tmpdir())`),
      ...leftInCheckout.map((n) => `${n} in the checkout`),
    ];
    if (problems.length > 0) {
      // vitest prints an error thrown here but would still exit 0.
      process.exitCode = 1;
      throw new Error(
        'tests left behind what they created (remove it in afterAll/afterEach, or make it with ' +
          `makeTempDir from test/support/harness.ts, removed after each file):\n  ${problems.join('\n  ')}`,
      );
    }
  };
}
