// `localauthority show|prepare|activate|taint|revoke`: the CA's signing authorities and their
// rotation (/v1/authorities). `--kind x509|jwt` picks X.509 CAs or JWT signing keys.
import { jsonBody } from '../admin-client.js';
import type { FlagSpecs } from '../args.js';
import { type CommandContext, type CommandSpec, printRaw } from '../command.js';
import { formatTable, formatTime } from '../format.js';
import { oneOf } from '../values.js';

interface WireAuthority {
  id: string;
  state: string;
  tainted: boolean;
  not_after: number;
  published_at: number | null;
  activated_at: number | null;
  next_event: string | null;
  next_event_at: number | null;
}

const KIND: FlagSpecs = {
  kind: {
    type: 'string',
    placeholder: 'KIND',
    description: 'x509 (CA certificates) or jwt (JWT signing keys)',
    required: true,
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
  ]);
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
    const headers = ['ID', 'STATE', 'EXPIRES AT', 'NEXT'];
    ctx.io.stdout.write(
      `X.509 authorities\n${formatTable(headers, rows(body.x509))}\nJWT authorities\n${formatTable(headers, rows(body.jwt))}`,
    );
    return 0;
  },
};

function action(name: string, summary: string, withId: boolean): CommandSpec {
  return {
    name: `localauthority ${name}`,
    summary,
    flags: withId ? KIND_AND_ID : KIND,
    async run(ctx: CommandContext, flags) {
      const kind = oneOf('kind', flags.string('kind'), ['x509', 'jwt'] as const, 'x509');
      const path = withId
        ? `/v1/authorities/${kind}/${encodeURIComponent(flags.string('id')!)}/${name}`
        : `/v1/authorities/${kind}/${name}`;
      const response = await ctx.client().request('POST', path);
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
  action('activate', 'Activate the prepared authority now (the active one becomes old).', false),
  action('taint', 'Taint an old authority: agents re-sign everything it signed.', true),
  action('revoke', 'Remove a tainted authority from the bundle once nothing depends on it.', true),
];
