// What `sigil-proxy policy …` and `sigil-proxy route …` share: a command group's dispatch (help,
// unknown commands, SigilErrors as usage errors with exit 2) and flag parsing whose failures are
// usage errors naming the flag. Only the commands print; this file writes to the io it is given.
import { readFile } from 'node:fs/promises';
import { type CliOptions, parseCliArgs, unknownCommand } from '../spiffe/cli-args.js';
import { isSigilError, quote, SigilError } from '../spiffe/errors.js';

export interface CommandIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** Exit status for bad flags or a file that does not load. */
export const USAGE_EXIT = 2;

type Command = (args: readonly string[], io: CommandIo) => Promise<number>;

/**
 * Runs `args[0]` of the group `sigil-proxy <group>` among `commands`; prints `help` for help and
 * for a missing or unknown command. A SigilError from a command is printed and exits USAGE_EXIT.
 */
export async function runCommandGroup(
  group: string,
  commands: Readonly<Record<string, Command>>,
  help: string,
  args: readonly string[],
  io: CommandIo,
): Promise<number> {
  const [name, ...rest] = args;
  if (name === '-h' || name === '--help' || name === 'help') {
    io.stdout.write(help);
    return 0;
  }
  const command = name !== undefined && Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    io.stderr.write(
      `${name === undefined ? 'missing command' : unknownCommand(name, Object.keys(commands))}\n\n${help}`,
    );
    return USAGE_EXIT;
  }
  try {
    return await command(rest, io);
  } catch (err) {
    if (!isSigilError(err)) throw err;
    io.stderr.write(`sigil-proxy ${group} ${name}: ${err.message}\n`);
    return USAGE_EXIT;
  }
}

/** Parses like every Sigil CLI: an unknown flag is a usage error with a "did you mean". */
export function parseFlags<T extends CliOptions>(args: readonly string[], options: T) {
  return parseCliArgs(args, options);
}

export function outputFormat(value: string | undefined): 'text' | 'json' {
  const output = value ?? 'text';
  if (output !== 'text' && output !== 'json')
    throw usage(`--output: must be text or json (got ${quote(output)})`);
  return output;
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined) throw usage(`missing ${flag}`);
  return value;
}

/** Reads a file a command was pointed at; one it cannot read is ERR_CONFIG_INVALID (exit 2). */
export async function readCommandFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { reason: 'read', cause: err },
    );
  }
}

export function usage(message: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', message, { reason: 'usage' });
}

/**
 * `value` as the JSON the proxy CLIs print: indented, and every key snake_case like the rest of
 * Sigil's JSON (`dryRunDenials` → `dry_run_denials`, `requestMs` → `request_ms`), so the internal
 * camelCase types can be printed as they are. Values (IDs, paths, header names) are never changed.
 */
export function cliJson(value: unknown): string {
  return `${JSON.stringify(snakeCaseKeys(value), null, 2)}\n`;
}

function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase(),
      snakeCaseKeys(v),
    ]),
  );
}
