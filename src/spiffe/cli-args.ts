// The usage errors the three CLIs share: unknown flags and commands with a "did you mean", flags
// missing their value, and --output json detected even on a command line that fails to parse (so
// that a script asking for JSON gets JSON errors). node:util parseArgs tokenizes; this file words.
import { parseArgs } from 'node:util';
import { quote, SigilError } from './errors.js';
import { closestMatch, didYouMean } from './suggest.js';

export type CliOptions = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/** A usage error (exit 2 in every CLI); `field` is the flag's name without dashes. */
export function usageError(message: string, field?: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', message, { field, reason: 'usage' });
}

/** A flag or command name as typed, quoted only when it holds more than name characters. */
export function shownName(raw: string): string {
  return /^[-\w.:]{1,64}$/.test(raw) ? raw : quote(raw);
}

/** `unknown flag --sokcet-path; did you mean --socket-path?` */
export function unknownFlag(raw: string, knownFlags: readonly string[]): SigilError {
  const field = raw.replace(/^-+/, '');
  return usageError(`unknown flag ${shownName(raw)}${didYouMean(raw, knownFlags)}`, field);
}

/** `unknown command "fly"; did you mean "run"?`: commands stay quoted as the CLIs always printed them. */
export function unknownCommand(name: string, knownCommands: readonly string[]): string {
  const match = closestMatch(name, knownCommands);
  return `unknown command ${quote(name)}${match === undefined ? '' : `; did you mean ${quote(match)}?`}`;
}

/** Every spelling of the flags in `options`, for suggestions: `--name` and `-x`. */
export function flagNames(options: CliOptions): string[] {
  return Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
}

/**
 * parseArgs with our wording: every problem is a usage error naming the flag. A string flag followed
 * by another flag (`--config --help`) means the value was forgotten, not that it is `--help`.
 */
export function parseCliArgs<T extends CliOptions>(
  args: readonly string[],
  options: T,
  allowPositionals = true,
) {
  // Positionals allowed here: after an unknown flag the next word may be its value, and the flag is
  // the problem to name.
  const { tokens } = parseArgs({
    args: [...args],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (option === undefined) throw unknownFlag(token.rawName, flagNames(options));
    if (option.type === 'boolean' && token.value !== undefined) {
      throw usageError(`--${token.name} takes no value`, token.name);
    }
    if (
      option.type === 'string' &&
      (token.value === undefined || (!token.inlineValue && token.value.startsWith('--')))
    ) {
      throw usageError(`--${token.name} needs a value`, token.name);
    }
  }
  const positional = tokens.find((t) => t.kind === 'positional');
  if (positional !== undefined && !allowPositionals) {
    throw usageError(`unexpected argument ${quote(positional.value)}`);
  }
  return parseArgs({ args: [...args], options, strict: true, allowPositionals });
}

/** True when the command line asks for `--output json` (the last --output wins), parseable or not. */
export function wantsJsonOutput(args: readonly string[]): boolean {
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg === '--output') json = args[++i] === 'json';
    else if (arg.startsWith('--output=')) json = arg === '--output=json';
  }
  return json;
}

/** The error line `--output json` prints on stdout, as sigil-server's CLI does: `{"error":{…}}`. */
export function errorJson(err: unknown): string {
  const code = err instanceof SigilError ? err.code : 'ERR_LOCAL';
  const field = err instanceof SigilError ? err.field?.replace(/^--/, '') : undefined;
  const message = err instanceof Error ? err.message : String(err);
  return `${JSON.stringify({ error: { code, message, field } })}\n`;
}
