// The shape every sigil-server subcommand has, and the context it runs in. Commands validate their
// flags before touching the socket (fail fast, exit 2) and return an exit code; errors they throw are
// mapped to exit codes in main.ts alone.
import { type AdminClient, type AdminResponse, jsonBody, unexpectedResponse } from './admin-client.js';
import type { FlagSpecs, ParsedFlags } from './args.js';

export interface Writable {
  write(chunk: string): unknown;
}

export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The invoking user, whose sockets (and root's) the CLI trusts; defaults to this process's uid. */
  readonly uid?: number;
}

export type OutputFormat = 'text' | 'json';

export interface CommandContext {
  readonly io: CliIo;
  readonly output: OutputFormat;
  /** Connects lazily, so a usage error never needs a server. */
  client(): AdminClient;
}

export interface CommandSpec {
  /** Full command words, e.g. `entry create`. */
  readonly name: string;
  readonly summary: string;
  /** Command-specific flags; the common ones (--admin-socket, --output, --help) are added by main.ts. */
  readonly flags: FlagSpecs;
  run(ctx: CommandContext, flags: ParsedFlags): Promise<number>;
}

/** Prints a response body for `--output json` exactly as the server sent it. */
export function printRaw(ctx: CommandContext, response: AdminResponse): void {
  if (response.text === '') return;
  ctx.io.stdout.write(response.text.endsWith('\n') ? response.text : `${response.text}\n`);
}

/** Beyond this many pages a listing takes long enough that a progress line on stderr helps. */
const QUIET_PAGES = 3;

/**
 * Follows `next_page_token` to the end and returns every item under `key`. A token the server hands
 * back twice would loop forever, so that is reported as a server fault instead.
 */
export async function fetchAllPages<T>(
  ctx: CommandContext,
  path: string,
  query: Record<string, string | readonly string[] | undefined>,
  key: string,
): Promise<T[]> {
  const items: T[] = [];
  const seenTokens = new Set<string>();
  let pageToken: string | undefined;
  for (let page = 1; ; page++) {
    const response = await ctx.client().request('GET', path, { query: { ...query, page_token: pageToken } });
    const body = jsonBody<Record<string, unknown>>(response);
    items.push(...((body[key] as T[] | undefined) ?? []));
    const next = body['next_page_token'];
    if (typeof next !== 'string' || next === '') return items;
    if (seenTokens.has(next)) {
      throw unexpectedResponse(`server repeated page token ${JSON.stringify(next)}`, response.text);
    }
    seenTokens.add(next);
    pageToken = next;
    if (page >= QUIET_PAGES) ctx.io.stderr.write(`fetched ${items.length} ${key} (${page} pages so far)…\n`);
  }
}
