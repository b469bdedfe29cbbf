// Test support for the socket-directory attacks (test/security/socket-*.test.ts): commands run as
// other users (setpriv), in a mount namespace whose /run is empty (a machine with no socket
// directories yet), daemons watched until they log a line, and an impostor that nobody runs at a
// socket path of the test's choosing. A SocketLab removes everything it made when cleaned up.
import { chmodSync, chownSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AGENT_BIN } from './agent-harness.js';
import { asUser, type Daemon, spawnDaemon } from './daemon.js';
import { type CliResult, makeTempDir, runCommand, SERVER_BIN, startServerProcess } from './harness.js';

export const NOBODY = 65534;
/** Only PATH: no XDG_RUNTIME_DIR or SIGIL_* from the developer's shell may steer the defaults. */
export const CLEAN_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const STARTUP_TIMEOUT_MS = 30_000;

export const server = (...args: string[]) => [process.execPath, SERVER_BIN, ...args];
export const agent = (...args: string[]) => [process.execPath, AGENT_BIN, ...args];

/** argv in a mount namespace whose /run is an empty tmpfs: a machine where no socket directory exists yet. */
export const withFreshRun = (argv: readonly string[]) => [
  'unshare',
  '--mount',
  'sh',
  '-c',
  'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"',
  'sh',
  ...argv,
];

export function run(argv: readonly string[], env: NodeJS.ProcessEnv = CLEAN_ENV): Promise<CliResult> {
  return runCommand(argv[0]!, argv.slice(1), env);
}

/** `stat`'s view of a path, as "<octal mode> uid=<owner>". */
export function modeOf(target: string): string {
  const stats = statSync(target);
  return `${(stats.mode & 0o7777).toString(8)} uid=${stats.uid}`;
}

/** A daemon the lab stops at cleanup. */
export interface LabDaemon extends Daemon {
  /** Resolves once the output matches; rejects if the process exits first or within 30s. */
  started(pattern: RegExp): Promise<void>;
  /** argv run inside this daemon's mount namespace. */
  inItsNamespace(argv: readonly string[]): string[];
}

export class SocketLab {
  private readonly cleanups: Array<() => unknown> = [];

  async cleanup(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup();
  }

  /** A temp dir removed afterwards; mode 1777 makes a shared, /tmp-like directory. */
  tempDir(mode = 0o700, owner = 0): string {
    const { dir, cleanup } = makeTempDir('sigil-sockets-');
    this.cleanups.push(cleanup);
    chmodSync(dir, mode);
    chownSync(dir, owner, owner);
    return dir;
  }

  /** `target` (a fixed path such as /tmp/sigil-server-<uid>) is removed afterwards. */
  removeAfter(target: string): string {
    this.cleanups.push(() => rmSync(target, { recursive: true, force: true }));
    return target;
  }

  spawn(argv: readonly string[], env: NodeJS.ProcessEnv = CLEAN_ENV): LabDaemon {
    // Named after the Sigil binary it runs, through whatever wrappers (setpriv, unshare) come first.
    const bin = argv.find((arg) => arg === SERVER_BIN || arg === AGENT_BIN) ?? argv[0]!;
    const daemon = spawnDaemon(argv, { name: path.basename(bin), env });
    this.cleanups.push(() => daemon.stop());
    return {
      ...daemon,
      started: (pattern) => daemon.waitForOutput(pattern, STARTUP_TIMEOUT_MS),
      inItsNamespace: (inner) => ['nsenter', '-t', String(daemon.child.pid), '-m', ...inner],
    };
  }

  /**
   * Runs argv to its exit, for daemons expected to refuse to start: one that starts after all is
   * stopped at cleanup instead of hanging the test.
   */
  async runToExit(argv: readonly string[]): Promise<{ code: number | null; output: string }> {
    const daemon = this.spawn(argv);
    const code = await Promise.race([
      daemon.exited,
      daemon.started(/"msg":"Sigil (server|agent) started"/).then(() => {
        throw new Error(`started instead of refusing:\n${daemon.output()}`);
      }),
    ]);
    return { code, output: daemon.output() };
  }

  /**
   * What nobody runs: an HTTP server at `socketPath` (directories created as needed, socket 0777)
   * that answers anything with a healthy-looking body and prints every connection it gets.
   */
  async plantSocket(socketPath: string): Promise<LabDaemon> {
    const impostor = `
      const fs = require('node:fs'), http = require('node:http'), path = require('node:path');
      const socketPath = process.argv[1];
      fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
      const server = http.createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'ok', agent_id: 'spiffe://example.org/impostor', entries: [] }));
      });
      server.on('connection', () => console.log('IMPOSTOR CONNECTED'));
      server.listen(socketPath, () => { fs.chmodSync(socketPath, 0o777); console.log('IMPOSTOR LISTENING'); });`;
    const daemon = this.spawn(asUser(NOBODY, [process.execPath, '-e', impostor, socketPath]));
    await daemon.started(/IMPOSTOR LISTENING/);
    return daemon;
  }

  /**
   * A running server with a join token (alias `<td>/node1`) and its bundle in a file, and the argv
   * of `sigil-agent run` against it with that token; the caller adds the socket and data flags.
   */
  async serverForAgents(trustDomainId: string) {
    const srv = await startServerProcess({ dataDir: this.tempDir() });
    this.cleanups.push(() => srv.stop());
    const bundlePath = path.join(this.tempDir(0o755), 'bundle.pem');
    writeFileSync(bundlePath, (await srv.cli('bundle', 'show', '--format', 'pem')).stdout);
    chmodSync(bundlePath, 0o644);
    const generated = await srv.cli(
      'token',
      'generate',
      '--output',
      'json',
      '--spiffe-id',
      `${trustDomainId}/node1`,
    );
    const token = JSON.parse(generated.stdout).token as string;
    const agentArgs = (...more: string[]) =>
      agent(
        'run',
        '--server-address',
        srv.agentApiAddress,
        '--trust-domain',
        new URL(trustDomainId).host,
        '--trust-bundle-path',
        bundlePath,
        '--join-token',
        token,
        ...more,
      );
    return { srv, token, agentArgs };
  }
}
