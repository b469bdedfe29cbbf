// Config checking shared by the node attestors. Every problem is collected under its dotted path and
// reported at once (STYLE §7). Each attestor's factory parses with one of these, so the function that
// validates a config is the one that builds the attestor from it: a check and a start cannot disagree.
// Files named by the config are read here, at create time, so a bad path fails at startup.
import { readFileSync } from 'node:fs';
import { quote, SigilError } from '../../spiffe/errors.js';

export type RawMapping = Readonly<Record<string, unknown>>;

/** Reads a file as UTF-8; injected so tests can reach the error paths without touching the disk. */
export type ReadTextFile = (file: string) => string;

const readTextFileSync: ReadTextFile = (file) => readFileSync(file, 'utf8');

export class ConfigCheck {
  private readonly problems: { readonly path: string; readonly message: string }[] = [];

  /** `field` is the dotted path of the attestor's config, e.g. `node_attestors.x509pop`. */
  constructor(
    readonly field: string,
    private readonly readTextFile: ReadTextFile = readTextFileSync,
  ) {}

  /** The dotted path of `key` under `parent` (the attestor's field by default). */
  path(key: string, parent = this.field): string {
    return `${parent}.${key}`;
  }

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  get ok(): boolean {
    return this.problems.length === 0;
  }

  /** A mapping with only `known` keys; absent (undefined or null) counts as empty when `optional`. */
  mapping(
    path: string,
    value: unknown,
    known: readonly string[] | null,
    optional = false,
  ): RawMapping | null {
    if ((value === undefined || value === null) && optional) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.problem(path, `must be a mapping (got ${shown(value)})`);
      return null;
    }
    const mapping = value as RawMapping;
    if (known !== null) {
      for (const key of Object.keys(mapping)) {
        if (!known.includes(key)) {
          const allowed =
            known.length === 0 ? 'this attestor takes no settings' : `known keys: ${known.join(', ')}`;
          this.problem(this.path(key, path), `unknown key (${allowed})`);
        }
      }
    }
    return mapping;
  }

  /** A non-empty string; `undefined` when absent and not required, or when invalid (a problem is noted). */
  string(path: string, value: unknown, required: boolean): string | undefined {
    if (value === undefined) {
      if (required) this.problem(path, 'is required');
      return undefined;
    }
    if (typeof value !== 'string' || value === '') {
      this.problem(path, `must be a non-empty string (got ${shown(value)})`);
      return undefined;
    }
    return value;
  }

  /** A list of non-empty strings; `minItems` 1 makes an empty list a problem. */
  stringList(path: string, value: unknown, minItems: number): string[] | undefined {
    if (!Array.isArray(value)) {
      this.problem(path, `must be a list of strings (got ${shown(value)})`);
      return undefined;
    }
    if (value.length < minItems) {
      this.problem(path, `must hold at least ${minItems} item${minItems === 1 ? '' : 's'}`);
      return undefined;
    }
    const bad = value.findIndex((item) => typeof item !== 'string' || item === '');
    if (bad !== -1) {
      this.problem(`${path}[${bad}]`, `must be a non-empty string (got ${shown(value[bad])})`);
      return undefined;
    }
    return value as string[];
  }

  boolean(path: string, value: unknown, defaultValue: boolean): boolean {
    if (value === undefined) return defaultValue;
    if (typeof value !== 'boolean') {
      this.problem(path, `must be true or false (got ${shown(value)})`);
      return defaultValue;
    }
    return value;
  }

  /** The file's text, or undefined after noting "cannot read <file>: <errno code>". */
  readFile(path: string, file: string | undefined): string | undefined {
    if (file === undefined) return undefined;
    try {
      return this.readTextFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.problem(path, `cannot read ${file}: ${code}`);
      return undefined;
    }
  }

  /** Throws ERR_CONFIG_INVALID listing every problem noted so far; returns when there were none. */
  finish(): void {
    if (this.problems.length === 0) return;
    const first = this.problems[0]!;
    const message =
      this.problems.length === 1
        ? `${first.path}: ${first.message}`
        : `${this.field} has ${this.problems.length} problems\n${this.problems
            .map((p) => `  ${p.path}: ${p.message}`)
            .join('\n')}`;
    throw new SigilError('ERR_CONFIG_INVALID', message, { field: first.path, reason: 'config' });
  }
}

/** Strings quoted, other values as JSON (`42`, `true`, `["a"]`), so the type error is visible. */
function shown(value: unknown): string {
  if (typeof value === 'string' || value === undefined) return quote(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
