// `bundle show|list|set|delete`: the server's own trust bundle and federated ones. PEM is the
// default text format because that is what TLS tooling consumes; `spiffe` is the JWKS document.
import { readFile } from 'node:fs/promises';
import { quote } from '../../../spiffe/errors.js';
import { decodePemBlocks } from '../../../spiffe/pem.js';
import { jsonBody } from '../admin-client.js';
import { type FlagSpec, usageError } from '../args.js';
import { type CommandSpec, printRaw } from '../command.js';
import { bundleToPem, formatTime } from '../format.js';
import { oneOf, trustDomainFlag } from '../values.js';

const FORMATS = ['pem', 'spiffe'] as const;
type BundleFormat = (typeof FORMATS)[number];

const FORMAT_FLAG: FlagSpec = {
  type: 'string',
  placeholder: 'pem|spiffe',
  description: 'bundle format',
  defaultText: 'pem',
};

interface FederatedBundle {
  readonly trust_domain: string;
  readonly sequence?: number;
  readonly updated_at?: number;
  readonly bundle: unknown;
}

const show: CommandSpec = {
  name: 'bundle show',
  summary: "Print the server's own trust bundle, or a federated one with --id.",
  flags: {
    id: {
      type: 'string',
      placeholder: 'TD',
      description: 'federated trust domain',
      defaultText: "the server's own",
    },
    format: FORMAT_FLAG,
  },
  async run(ctx, flags) {
    const format = oneOf('format', flags.string('format'), FORMATS, 'pem');
    const id = flags.string('id');
    const path = id === undefined ? '/v1/bundle' : `/v1/bundles/${trustDomainFlag('id', id)}`;
    // The body (PEM text or SPIFFE JSON) is already what the operator asked for, in either output mode.
    printRaw(ctx, await ctx.client().request('GET', path, { query: { format } }));
    return 0;
  },
};

const list: CommandSpec = {
  name: 'bundle list',
  summary: 'List the federated trust bundles.',
  flags: { format: FORMAT_FLAG },
  async run(ctx, flags) {
    const format = oneOf('format', flags.string('format'), FORMATS, 'pem');
    const response = await ctx.client().request('GET', '/v1/bundles');
    if (ctx.output === 'json') {
      printRaw(ctx, response);
      return 0;
    }
    const { bundles } = jsonBody<{ bundles: FederatedBundle[] }>(response);
    ctx.io.stdout.write(`Found ${bundles.length} federated ${bundles.length === 1 ? 'bundle' : 'bundles'}\n`);
    for (const b of bundles) {
      const meta = `sequence ${b.sequence ?? 0}, updated ${formatTime(b.updated_at)}`;
      const body = format === 'pem' ? bundleToPem(b.bundle) : `${JSON.stringify(b.bundle, null, 2)}\n`;
      ctx.io.stdout.write(`\n***** ${b.trust_domain} (${meta})\n${body}`);
    }
    return 0;
  },
};

const set: CommandSpec = {
  name: 'bundle set',
  summary: 'Create or replace the bundle of a federated trust domain from a file.',
  flags: {
    id: { type: 'string', placeholder: 'TD', description: 'federated trust domain', required: true },
    path: { type: 'string', placeholder: 'FILE', description: 'bundle file', required: true },
    format: { ...FORMAT_FLAG, defaultText: 'detected from the file' },
  },
  async run(ctx, flags) {
    const td = trustDomainFlag('id', flags.string('id')!);
    const given = flags.has('format')
      ? oneOf<BundleFormat>('format', flags.string('format'), FORMATS, 'pem')
      : undefined;
    const file = flags.string('path')!;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw usageError(
        `--path: cannot read ${quote(file)}: ${(err as NodeJS.ErrnoException).code ?? err}`,
        'path',
      );
    }
    const format = given ?? (text.trimStart().startsWith('{') ? 'spiffe' : 'pem');
    const body = format === 'pem' ? { pem: pemBundle(text) } : { bundle: spiffeBundle(text, file) };
    const response = await ctx.client().request('PUT', `/v1/bundles/${td}`, { body });
    if (ctx.output === 'json') printRaw(ctx, response);
    else {
      const saved = jsonBody<FederatedBundle>(response);
      ctx.io.stdout.write(`Bundle for ${saved.trust_domain} set (sequence ${saved.sequence ?? 0})\n`);
    }
    return 0;
  },
};

/** Refuses files without a CA certificate here, where the message can name --path. */
function pemBundle(text: string): string {
  decodePemBlocks(text, 'CERTIFICATE', '--path');
  return text;
}

function spiffeBundle(text: string, file: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw usageError(
      `--path: ${quote(file)} is not a SPIFFE bundle (JSON): ${(err as Error).message}`,
      'path',
    );
  }
  if (!Array.isArray((parsed as { keys?: unknown } | null)?.keys)) {
    throw usageError(`--path: ${quote(file)} is not a SPIFFE bundle (needs a "keys" array)`, 'path');
  }
  return parsed;
}

const remove: CommandSpec = {
  name: 'bundle delete',
  summary: 'Delete the bundle of a federated trust domain.',
  flags: { id: { type: 'string', placeholder: 'TD', description: 'federated trust domain', required: true } },
  async run(ctx, flags) {
    const td = trustDomainFlag('id', flags.string('id')!);
    const response = await ctx.client().request('DELETE', `/v1/bundles/${td}`);
    if (ctx.output === 'json') printRaw(ctx, response);
    else ctx.io.stdout.write(`Deleted bundle for ${td}\n`);
    return 0;
  },
};

export const bundleCommands: readonly CommandSpec[] = [show, list, set, remove];
