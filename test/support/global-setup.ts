// Once per run. E2E tests start the compiled CLI (bin/ -> dist/), so make sure dist/ matches src/
// first. Then every temp dir of the run goes under one run directory (TMPDIR, inherited by every
// worker and child process), and teardown fails the run if tests left anything there or in the
// checkout: a server's data dir holds CA keys and a SQLite store, and must not outlive its test.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the daemons put their sockets by default when run as root: a test must not leave them. */
const SYSTEM_RUNTIME_DIRS = ['/run/sigil-server', '/run/sigil-agent'];
/** The per-user fallback (runtime-dir.ts): a fixed /tmp, not $TMPDIR, so the run dir does not hold it. */
const userRuntimeDirs = () => readdirSync('/tmp').filter((n) => /^sigil-(server|agent)-\d+$/.test(n));

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
  const runtimeBefore = new Set(SYSTEM_RUNTIME_DIRS.filter((d) => existsSync(d)));
  const userRuntimeBefore = new Set(userRuntimeDirs());

  return () => {
    if (outerTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = outerTmp;
    const leftInTmp = readdirSync(runDir);
    rmSync(runDir, { recursive: true, force: true });
    const leftInCheckout = readdirSync(root).filter((n) => !checkoutBefore.has(n) && !CHECKOUT_OWN.has(n));
    const leftInRun = [
      ...SYSTEM_RUNTIME_DIRS.filter((d) => existsSync(d) && !runtimeBefore.has(d)),
      ...userRuntimeDirs()
        .filter((n) => !userRuntimeBefore.has(n))
        .map((n) => `/tmp/${n}`),
    ];
    const problems = [
      ...leftInTmp.map((n) => `temp dir ${n} (under os.tmpdir())`),
      ...leftInCheckout.map((n) => `${n} in the checkout`),
      ...leftInRun.map((d) => `${d} (a daemon run with its default sockets; pass paths under a temp dir)`),
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
