// `localauthority show|prepare|activate|taint|revoke`: the CA's signing authorities and their
// rotation (/v1/authorities). `--kind x509|jwt` picks X.509 CAs or JWT signing keys. `show` says
// when a prepared authority is safe to activate and what still chains to an old one; activate and
// revoke refuse before then unless `--force`, or wait for it with `--wait` (authority-wait.ts).

import { parseDurationMs } from '../../../spiffe/duration.js';
import { jsonBody } from '../admin-client.js';
import type { FlagSpecs } from '../args.js';
import { type CommandContext, type CommandSpec, printRaw } from '../command.js';
import { formatTable, formatTime } from '../format.js';
import { oneOf } from '../values.js';
import { type Blocker, untilNothingChains, untilPublished, waitUntilSafe } from './authority-wait.js';

interface WireAuthority {
  id: string;
  state: string;
  tainted: boolean;
  not_after: number;
  published_at: number | null;
  activated_at: number | null;
  next_event: string | null;
  next_event_at: number | null;
  safe_to_activate_at: number | null;
  dependents: { agents: number; unknown_agents: number; server_svid: boolean } | null;
}

const KIND: FlagSpecs = {
  kind: {
    type: 'string',
    placeholder: 'KIND',
    description: 'x509 (CA certificates) or jwt (JWT signing keys)',
    required: true,
  },
};
const FORCE: FlagSpecs = {
  force: {
    type: 'boolean',
    description: 'do it even though agents may be locked out (see the refusal for what it risks)',
  },
};
const WAIT: FlagSpecs = {
  wait: {
    type: 'string',
    placeholder: 'DURATION',
    description: 'first wait up to DURATION (e.g. 30m) until it is safe, showing what it waits for',
  },
};
const KIND_AND_ID: FlagSpecs = {
  ...KIND,
  id: {
    type: 'string',
    placeholder: 'ID',
    description: 'authority ID (X.509: subject key ID; JWT: key ID)',
    required: true,
  },
};

function rows(authorities: readonly WireAuthority[]): string[][] {
  return authorities.map((a) => [
    a.id,
    `${a.state}${a.tainted ? ' (tainted)' : ''}`,
    formatTime(a.not_after),
    a.next_event ? `${a.next_event} at ${formatTime(a.next_event_at)}` : '-',
    notes(a),
  ]);
}

/** When a prepared authority is safe to activate; what still chains to an old one (revoke waits for none). */
function notes(a: WireAuthority): string {
  if (a.safe_to_activate_at !== null) return `safe to activate from ${formatTime(a.safe_to_activate_at)}`;
  if (a.dependents === null) return '-';
  const { agents, unknown_agents: unknown, server_svid: server } = a.dependents;
  if (agents === 0 && unknown === 0 && !server) return 'nothing chains to it';
  const parts = [
    `${agents} agent${agents === 1 ? '' : 's'}`,
    ...(unknown > 0 ? [`${unknown} agent(s) of unknown issuer`] : []),
    ...(server ? ['the server SVID'] : []),
  ];
  return `chained: ${parts.join(', ')}`;
}

const show: CommandSpec = {
  name: 'localauthority show',
  summary: 'Show the X.509 CAs and JWT keys with their state, expiry and next rotation step.',
  flags: {},
  async run(ctx) {
    const response = await ctx.client().request('GET', '/v1/authorities');
    if (ctx.output === 'json') {
      printRaw(ctx, response);
      return 0;
    }
    const body = jsonBody<{ x509: WireAuthority[]; jwt: WireAuthority[] }>(response);
    const headers = ['ID', 'STATE', 'EXPIRES AT', 'NEXT', 'NOTES'];
    ctx.io.stdout.write(
      `X.509 authorities\n${formatTable(headers, rows(body.x509))}\nJWT authorities\n${formatTable(headers, rows(body.jwt))}`,
    );
    return 0;
  },
};

/** `guard` (activate, revoke) names what makes the step unsafe: it takes --force and --wait. */
function action(
  name: string,
  summary: string,
  withId: boolean,
  guard?: (id: string) => Blocker,
): CommandSpec {
  const forcible = guard !== undefined;
  return {
    name: `localauthority ${name}`,
    summary,
    flags: { ...(withId ? KIND_AND_ID : KIND), ...(forcible ? { ...FORCE, ...WAIT } : {}) },
    async run(ctx: CommandContext, flags) {
      const kind = oneOf('kind', flags.string('kind'), ['x509', 'jwt'] as const, 'x509');
      const wait = flags.string('wait');
      if (guard && wait !== undefined && !flags.boolean('force')) {
        // Parsed before anything is asked of the server: a typo is a usage error.
        const waitMs = parseDurationMs(wait, '--wait');
        await waitUntilSafe(ctx, kind, waitMs, guard(flags.string('id') ?? ''));
      }
      const path = withId
        ? `/v1/authorities/${kind}/${encodeURIComponent(flags.string('id')!)}/${name}`
        : `/v1/authorities/${kind}/${name}`;
      const query = forcible && flags.boolean('force') ? { force: 'true' } : undefined;
      const response = await ctx.client().request('POST', path, query ? { query } : {});
      if (ctx.output === 'json') {
        printRaw(ctx, response);
        return 0;
      }
      const { authority } = jsonBody<{ authority: WireAuthority }>(response);
      ctx.io.stdout.write(
        `${kind} authority ${authority.id} is now ${authority.state}${authority.tainted ? ' (tainted)' : ''}\n`,
      );
      return 0;
    },
  };
}

export const authorityCommands: readonly CommandSpec[] = [
  show,
  action('prepare', 'Prepare the next authority now: published in the bundle, not signing yet.', false),
  action(
    'activate',
    'Activate the prepared authority (the active one becomes old); refused before its publish lead unless --force; --wait waits for it.',
    false,
    () => untilPublished,
  ),
  action('taint', 'Taint an old authority: the server and agents re-sign everything it signed.', true),
  action(
    'revoke',
    'Remove a tainted authority from the bundle; refused while live SVIDs chain to it unless --force; --wait waits for them to move.',
    true,
    untilNothingChains,
  ),
];
