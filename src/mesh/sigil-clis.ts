// What the mesh asks of the server through its own CLI on its admin socket, exactly as an operator
// would type it: a join token, the trust bundle, entries. Nothing here imports server code; a CLI
// that fails is reported with what it printed.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { SigilError } from '../spiffe/errors.js';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export type RunCommand = (argv: readonly string[]) => Promise<CommandResult>;

/** A CLI call that hangs this long is killed and counts as failed. */
const COMMAND_TIMEOUT_MS = 30_000;
/** CLI output is small JSON; anything bigger is an error, not something to buffer. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/** Runs argv to completion, never throwing on a non-zero exit (the caller reads `code`). */
export function commandRunner(env: Readonly<Record<string, string | undefined>>): RunCommand {
  return (argv) =>
    new Promise((resolve) => {
      execFile(
        argv[0]!,
        argv.slice(1),
        { env, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        },
      );
    });
}

export interface SigilBins {
  /** The node binary the CLIs run on (this process's). */
  readonly node: string;
  readonly server: string;
}

export interface EntrySpec {
  readonly spiffeId: string;
  readonly parentId: string;
  readonly hint: string;
  /** Short enough that `sigil-agent api watch` shows rotations within minutes. */
  readonly x509SvidTtl: string;
}

export class SigilClis {
  constructor(
    private readonly run: RunCommand,
    private readonly bins: SigilBins,
    private readonly serverAdminSocket: string,
  ) {}

  /** A single-use join token whose agent also gets `aliasId`. */
  async joinToken(aliasId: string): Promise<string> {
    const res = await this.serverOk('token generate', [
      'token',
      'generate',
      '--spiffe-id',
      aliasId,
      '--ttl',
      '10m',
      '--output',
      'json',
    ]);
    return String((JSON.parse(res.stdout) as { token: unknown }).token);
  }

  /** The trust bundle as PEM, what the agent trusts the server with on first contact. */
  async bundlePem(): Promise<string> {
    return (await this.serverOk('bundle show', ['bundle', 'show', '--format', 'pem'])).stdout;
  }

  /**
   * Creates, in one batch written to `batchFile`, those of `entries` not registered yet (an entry
   * with the same ID and exactly the same selector); returns the IDs it created.
   */
  async ensureEntries(entries: readonly EntrySpec[], selector: string, batchFile: string): Promise<string[]> {
    const found = await this.serverOk('entry show', [
      'entry',
      'show',
      '--selector',
      selector,
      '--match',
      'exact',
      '--output',
      'json',
    ]);
    const known = new Set(
      (JSON.parse(found.stdout) as { entries: Array<{ spiffe_id: string }> }).entries.map((e) => e.spiffe_id),
    );
    const missing = entries.filter((entry) => !known.has(entry.spiffeId));
    if (missing.length === 0) return [];
    const batch = missing.map((entry) => ({
      spiffe_id: entry.spiffeId,
      parent_id: entry.parentId,
      selectors: [selector],
      hint: entry.hint,
      x509_svid_ttl: entry.x509SvidTtl,
    }));
    writeFileSync(batchFile, `${JSON.stringify({ entries: batch }, null, 2)}\n`, { mode: 0o600 });
    await this.serverOk('entry create', ['entry', 'create', '--data', batchFile, '--output', 'json']);
    return missing.map((entry) => entry.spiffeId);
  }

  private server(...args: string[]): Promise<CommandResult> {
    return this.run([this.bins.node, this.bins.server, ...args, '--admin-socket', this.serverAdminSocket]);
  }

  private async serverOk(what: string, args: string[]): Promise<CommandResult> {
    const res = await this.server(...args);
    if (res.code !== 0) {
      throw new SigilError(
        'ERR_UNAVAILABLE',
        `sigil-server ${what} failed (exit ${res.code}): ${(res.stderr || res.stdout).trim()}`,
        { reason: 'command-failed' },
      );
    }
    return res;
  }
}
