// Flag parsing for the sigil-server CLI: node:util parseArgs tokenizes (`--a=b`, `-h`, `--`), and
// this file decides, so every problem (unknown flag, missing value, repeated single flag, missing
// required flag) is a usage error that names the flag. Values are validated by the commands, which
// know their meaning; this file only knows their shape.
import { parseArgs } from 'node:util';
import { flagNames, unknownFlag, usageError } from '../../spiffe/cli-args.js';
import { quote } from '../../spiffe/errors.js';
import { helpColumns, helpParagraph } from '../../spiffe/help-layout.js';
import { describeDefaultSocket } from '../../spiffe/runtime-dir.js';

export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** Repeatable: every occurrence is kept, in order. */
  readonly multiple?: boolean;
  readonly short?: string;
  /** Placeholder shown in usage, e.g. `ID`. */
  readonly placeholder?: string;
  readonly description: string;
  /** Shown in usage only; commands apply defaults themselves so a missing flag stays visible. */
  readonly defaultText?: string;
  readonly required?: boolean;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export interface ParsedFlags {
  string(name: string): string | undefined;
  strings(name: string): string[];
  boolean(name: string): boolean;
  /** True when the flag appeared on the command line at all. */
  has(name: string): boolean;
}

/** Flags every command accepts. Defaults are resolved in main.ts, which alone reads the environment. */
export const COMMON_FLAGS: FlagSpecs = {
  'admin-socket': {
    type: 'string',
    placeholder: 'PATH',
    description: 'admin API Unix socket',
    defaultText: `$SIGIL_ADMIN_SOCKET, else ${describeDefaultSocket('serverAdmin')}`,
  },
  output: { type: 'string', placeholder: 'text|json', description: 'output format', defaultText: 'text' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export { usageError };

/** Parses `argv` against `specs`. Messages name the flag; main.ts prefixes the command. */
export function parseFlags(specs: FlagSpecs, argv: readonly string[]): ParsedFlags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple: true }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type, multiple: true, ...(spec.short ? { short: spec.short } : {}) };
  }
  // strict: false so that we, not parseArgs, word the errors; tokens carry what we need to check.
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values = new Map<string, Array<string | boolean>>();
  for (const token of tokens) {
    if (token.kind === 'positional') {
      throw usageError(`unexpected argument ${quote(token.value)}`);
    }
    if (token.kind !== 'option') continue;
    const spec = Object.hasOwn(specs, token.name) ? specs[token.name] : undefined;
    if (spec === undefined) throw unknownFlag(token.rawName, flagNames(specs));
    const flag = `--${token.name}`;
    let value: string | boolean;
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw usageError(`${flag} takes no value`, token.name);
      value = true;
    } else {
      // Without inline `=`, a value that looks like a flag means the real value was forgotten.
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
        throw usageError(`${flag} needs a value (${spec.placeholder ?? 'VALUE'})`, token.name);
      }
      value = token.value;
    }
    const seen = values.get(token.name) ?? [];
    if (seen.length > 0 && !spec.multiple && spec.type === 'string') {
      throw usageError(`${flag} may be given only once`, token.name);
    }
    seen.push(value);
    values.set(token.name, seen);
  }
  const parsed: ParsedFlags = {
    string: (name) => values.get(name)?.[0] as string | undefined,
    strings: (name) => (values.get(name) ?? []) as string[],
    boolean: (name) => values.get(name)?.[0] === true,
    has: (name) => values.has(name),
  };
  if (!parsed.boolean('help')) {
    for (const [name, spec] of Object.entries(specs)) {
      if (spec.required && !values.has(name)) throw usageError(`missing required flag --${name}`, name);
    }
  }
  return parsed;
}

/** Usage text: one line per flag with its placeholder, whether it repeats, and its default. */
export function formatUsage(command: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '';
    const left = `${short}--${name}${spec.type === 'string' ? ` ${spec.placeholder ?? 'VALUE'}` : ''}`;
    const notes = [
      spec.required ? 'required' : '',
      spec.multiple ? 'repeatable' : '',
      spec.defaultText !== undefined ? `default: ${spec.defaultText}` : '',
    ].filter((n) => n !== '');
    return [left, notes.length > 0 ? `${spec.description} (${notes.join('; ')})` : spec.description] as const;
  });
  return `Usage: sigil-server ${command} [flags]\n\n${helpParagraph(summary)}\n\nFlags:\n${helpColumns(rows)}\n`;
}
