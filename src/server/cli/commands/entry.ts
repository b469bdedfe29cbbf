// `entry create|show|update|delete`: registration entries over /v1/entries. Flags map one to one
// onto EntryInput fields; everything the src/spiffe parsers can check is checked before sending.
import { readFile } from 'node:fs/promises';
import { quote } from '../../../spiffe/errors.js';
import { jsonBody } from '../admin-client.js';
import { type FlagSpecs, type ParsedFlags, usageError } from '../args.js';
import { type CommandContext, type CommandSpec, fetchAllPages, printRaw } from '../command.js';
import { formatEntry, formatTable, type WireEntry } from '../format.js';
import {
  dnsNameFlags,
  expiresAtFlag,
  issuedIdFlag,
  oneOf,
  selectorFlags,
  spiffeIdFlag,
  trustDomainFlag,
  ttlFlag,
  uuidFlag,
} from '../values.js';

/** The API's batch limit; checked here so a large file fails before anything is created. */
const MAX_BATCH_ENTRIES = 500;
const MATCH_MODES = ['exact', 'subset', 'superset', 'any'] as const;

const FIELD_FLAGS: FlagSpecs = {
  'spiffe-id': { type: 'string', placeholder: 'ID', description: 'SPIFFE ID the entry issues' },
  'parent-id': {
    type: 'string',
    placeholder: 'ID',
    description: 'SPIFFE ID of the agent (or node entry) parent',
  },
  node: {
    type: 'boolean',
    description: 'node entry: parented to the server itself (instead of --parent-id)',
  },
  selector: {
    type: 'string',
    multiple: true,
    placeholder: 'TYPE:VALUE',
    description: 'selector, e.g. unix:uid:1000',
  },
  'x509-svid-ttl': {
    type: 'string',
    placeholder: 'DURATION',
    description: 'X509-SVID TTL',
    defaultText: 'server',
  },
  'jwt-svid-ttl': {
    type: 'string',
    placeholder: 'DURATION',
    description: 'JWT-SVID TTL',
    defaultText: 'server',
  },
  dns: { type: 'string', multiple: true, placeholder: 'NAME', description: 'DNS name for the X509-SVID' },
  admin: { type: 'boolean', description: 'SVIDs of this entry may call the admin API' },
  downstream: { type: 'boolean', description: 'entry for a downstream (nested) server' },
  'federates-with': {
    type: 'string',
    multiple: true,
    placeholder: 'TD',
    description: 'federated trust domain',
  },
  hint: { type: 'string', placeholder: 'TEXT', description: 'hint for workloads holding several SVIDs' },
  'expires-at': {
    type: 'string',
    placeholder: 'TIME',
    description: 'entry expiry, RFC 3339 or Unix seconds',
    defaultText: 'never',
  },
};

/**
 * EntryInput fields from the flags that were given; absent flags are absent from the body.
 * `canClear`: an update may set expires_at back to never (null), which a create has no need for.
 */
function entryInput(flags: ParsedFlags, { canClear }: { canClear: boolean }): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const spiffeId = flags.string('spiffe-id');
  const parentId = flags.string('parent-id');
  if (parentId !== undefined && flags.boolean('node')) {
    throw usageError(
      '--parent-id and --node exclude each other (a node entry is parented to the server)',
      'node',
    );
  }
  if (spiffeId !== undefined) body['spiffe_id'] = issuedIdFlag('spiffe-id', spiffeId);
  // A parent may be the server or an agent: only the issued ID is kept out of the reserved namespace.
  if (parentId !== undefined) body['parent_id'] = spiffeIdFlag('parent-id', parentId);
  if (flags.boolean('node')) body['node'] = true;
  if (flags.has('selector')) body['selectors'] = selectorFlags('selector', flags.strings('selector'));
  const x509Ttl = ttlFlag('x509-svid-ttl', flags.string('x509-svid-ttl'));
  if (x509Ttl !== undefined) body['x509_svid_ttl'] = x509Ttl;
  const jwtTtl = ttlFlag('jwt-svid-ttl', flags.string('jwt-svid-ttl'));
  if (jwtTtl !== undefined) body['jwt_svid_ttl'] = jwtTtl;
  if (flags.has('dns')) body['dns_names'] = dnsNameFlags('dns', flags.strings('dns'));
  if (flags.has('federates-with')) {
    body['federates_with'] = flags
      .strings('federates-with')
      .map((td) => trustDomainFlag('federates-with', td));
  }
  for (const name of ['admin', 'downstream'] as const) {
    if (flags.boolean(name)) body[name] = true;
    if (flags.boolean(`no-${name}`)) {
      if (flags.boolean(name)) throw usageError(`--${name} and --no-${name} exclude each other`, name);
      body[name] = false;
    }
  }
  const hint = flags.string('hint');
  if (hint !== undefined) body['hint'] = hint;
  const expiresAt = flags.string('expires-at');
  if (expiresAt !== undefined) {
    body['expires_at'] = canClear && expiresAt === 'never' ? null : expiresAtFlag('expires-at', expiresAt);
  }
  return body;
}

const create: CommandSpec = {
  name: 'entry create',
  summary: 'Create a registration entry, or many from a JSON file with --data.',
  flags: {
    ...FIELD_FLAGS,
    id: {
      type: 'string',
      placeholder: 'UUID',
      description: 'entry ID',
      defaultText: 'assigned by the server',
    },
    data: {
      type: 'string',
      placeholder: 'FILE',
      description: 'batch-create from a JSON file {"entries":[EntryInput…]}',
    },
  },
  async run(ctx, flags) {
    const dataFile = flags.string('data');
    if (dataFile !== undefined) return createBatch(ctx, flags, dataFile);
    const body = entryInput(flags, { canClear: false });
    if (body['spiffe_id'] === undefined) throw usageError('missing required flag --spiffe-id', 'spiffe-id');
    if (body['parent_id'] === undefined && body['node'] === undefined) {
      throw usageError('missing required flag --parent-id (or --node for a node entry)', 'parent-id');
    }
    if (body['selectors'] === undefined) throw usageError('missing required flag --selector', 'selector');
    const id = flags.string('id');
    if (id !== undefined) body['id'] = uuidFlag('id', id);
    const response = await ctx.client().request('POST', '/v1/entries', { body });
    if (ctx.output === 'json') printRaw(ctx, response);
    else ctx.io.stdout.write(formatEntry(jsonBody<{ entry: WireEntry }>(response).entry));
    return 0;
  },
};

interface BatchResult {
  readonly status?: unknown;
  readonly entry?: WireEntry;
  readonly error?: { readonly code?: string; readonly message?: string };
}

async function createBatch(ctx: CommandContext, flags: ParsedFlags, file: string): Promise<number> {
  const others = Object.keys(FIELD_FLAGS)
    .concat('id')
    .filter((name) => flags.has(name));
  if (others.length > 0) throw usageError(`--data cannot be combined with --${others[0]}`, others[0]);
  const entries = await readBatchFile(file);
  const response = await ctx.client().request('POST', '/v1/entries/batch-create', { body: { entries } });
  const { results } = jsonBody<{ results: BatchResult[] }>(response);
  const failed = results.filter((r) => r.error !== undefined).length;
  if (ctx.output === 'json') {
    printRaw(ctx, response);
  } else {
    results.forEach((r, i) => {
      const line =
        r.error === undefined
          ? `${i + 1}: created ${r.entry?.id ?? ''} ${r.entry?.spiffe_id ?? ''}`
          : `${i + 1}: failed ${r.error.code ?? 'ERR_UNKNOWN'}: ${r.error.message ?? ''}`;
      ctx.io.stdout.write(`${line.trimEnd()}\n`);
    });
    ctx.io.stdout.write(`${results.length - failed} created, ${failed} failed\n`);
  }
  return failed > 0 ? 1 : 0;
}

async function readBatchFile(file: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw usageError(
      `--data: cannot read ${quote(file)}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      'data',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw usageError(`--data: ${quote(file)} is not JSON: ${(err as Error).message}`, 'data');
  }
  const entries = (parsed as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(entries) || entries.length === 0) {
    throw usageError(`--data: ${quote(file)} must hold {"entries": [...]} with at least one entry`, 'data');
  }
  if (entries.length > MAX_BATCH_ENTRIES) {
    throw usageError(
      `--data: ${quote(file)} has ${entries.length} entries, at most ${MAX_BATCH_ENTRIES} per batch`,
      'data',
    );
  }
  return entries;
}

const show: CommandSpec = {
  name: 'entry show',
  summary: 'Show one entry (--id) or list entries matching the filters, following every page.',
  flags: {
    id: { type: 'string', placeholder: 'UUID', description: 'show this entry only' },
    'spiffe-id': { type: 'string', placeholder: 'ID', description: 'filter by SPIFFE ID' },
    'parent-id': { type: 'string', placeholder: 'ID', description: 'filter by parent ID' },
    selector: {
      type: 'string',
      multiple: true,
      placeholder: 'TYPE:VALUE',
      description: 'filter by selector',
    },
    match: {
      type: 'string',
      placeholder: 'exact|subset|superset|any',
      description: 'selector match',
      defaultText: 'exact',
    },
  },
  async run(ctx, flags) {
    const id = flags.string('id');
    if (id !== undefined) {
      const filters = ['spiffe-id', 'parent-id', 'selector', 'match'].filter((n) => flags.has(n));
      if (filters.length > 0) throw usageError(`--id cannot be combined with --${filters[0]}`, filters[0]);
      const response = await ctx.client().request('GET', `/v1/entries/${uuidFlag('id', id)}`);
      if (ctx.output === 'json') printRaw(ctx, response);
      else ctx.io.stdout.write(formatEntry(jsonBody<{ entry: WireEntry }>(response).entry));
      return 0;
    }
    if (flags.has('match') && !flags.has('selector')) throw usageError('--match needs --selector', 'match');
    const spiffeId = flags.string('spiffe-id');
    const parentId = flags.string('parent-id');
    const query = {
      spiffe_id: spiffeId === undefined ? undefined : spiffeIdFlag('spiffe-id', spiffeId),
      parent_id: parentId === undefined ? undefined : spiffeIdFlag('parent-id', parentId),
      selector: selectorFlags('selector', flags.strings('selector')),
      match: flags.has('match') ? oneOf('match', flags.string('match'), MATCH_MODES, 'exact') : undefined,
    };
    const entries = await fetchAllPages<WireEntry>(ctx, '/v1/entries', query, 'entries');
    if (ctx.output === 'json') {
      ctx.io.stdout.write(`${JSON.stringify({ entries })}\n`);
    } else {
      ctx.io.stdout.write(`Found ${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}\n`);
      for (const entry of entries) ctx.io.stdout.write(`\n${formatEntry(entry)}`);
    }
    return 0;
  },
};

const update: CommandSpec = {
  name: 'entry update',
  summary: 'Change fields of an entry; flags not given are left as they are.',
  flags: {
    id: { type: 'string', placeholder: 'UUID', description: 'entry to update', required: true },
    ...FIELD_FLAGS,
    'expires-at': {
      ...FIELD_FLAGS['expires-at']!,
      description: 'entry expiry, RFC 3339, Unix seconds or "never"',
    },
    'no-admin': { type: 'boolean', description: 'clear the admin flag' },
    'no-downstream': { type: 'boolean', description: 'clear the downstream flag' },
  },
  async run(ctx, flags) {
    const id = uuidFlag('id', flags.string('id')!);
    const body = entryInput(flags, { canClear: true });
    if (Object.keys(body).length === 0) throw usageError('nothing to change (give at least one field flag)');
    const response = await ctx.client().request('PATCH', `/v1/entries/${id}`, { body });
    if (ctx.output === 'json') printRaw(ctx, response);
    else ctx.io.stdout.write(formatEntry(jsonBody<{ entry: WireEntry }>(response).entry));
    return 0;
  },
};

const remove: CommandSpec = {
  name: 'entry delete',
  summary: 'Delete an entry.',
  flags: { id: { type: 'string', placeholder: 'UUID', description: 'entry to delete', required: true } },
  async run(ctx, flags) {
    const id = uuidFlag('id', flags.string('id')!);
    const response = await ctx.client().request('DELETE', `/v1/entries/${id}`);
    if (ctx.output === 'json') printRaw(ctx, response);
    else ctx.io.stdout.write(`Deleted entry ${id}\n`);
    return 0;
  },
};

const explain: CommandSpec = {
  name: 'entry explain',
  summary: 'Show which entries an agent is authorized for, and through which IDs (aliases, parents).',
  flags: {
    agent: { type: 'string', placeholder: 'ID', description: "the agent's SPIFFE ID", required: true },
  },
  async run(ctx, flags) {
    const id = spiffeIdFlag('agent', flags.string('agent')!);
    const response = await ctx
      .client()
      .request('GET', `/v1/agents/${encodeURIComponent(id)}/authorized-entries`);
    if (ctx.output === 'json') {
      printRaw(ctx, response);
      return 0;
    }
    const body = jsonBody<{ aliases: string[]; entries: Array<{ entry: WireEntry; via: string[] }> }>(
      response,
    );
    ctx.io.stdout.write(`Agent ${id}
Aliases: ${body.aliases.length > 0 ? body.aliases.join(', ') : 'none'}
`);
    ctx.io.stdout.write(`Authorized for ${body.entries.length} ${body.entries.length === 1 ? 'entry' : 'entries'}
`);
    const rows = body.entries.map(({ entry, via }) => [entry.id, entry.spiffe_id, via.join(' -> ')]);
    if (rows.length > 0) ctx.io.stdout.write(formatTable(['ENTRY ID', 'SPIFFE ID', 'VIA'], rows));
    return 0;
  },
};

export const entryCommands: readonly CommandSpec[] = [create, show, update, remove, explain];
