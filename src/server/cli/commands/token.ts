// `token generate`: a one-time join token for node attestation (POST /v1/join-tokens).
import { jsonBody } from '../admin-client.js';
import { type CommandSpec, printRaw } from '../command.js';
import { formatBlock, formatTime } from '../format.js';
import { issuedIdFlag, ttlFlag } from '../values.js';

const generate: CommandSpec = {
  name: 'token generate',
  summary: 'Generate a join token an agent can attest with once.',
  flags: {
    'spiffe-id': {
      type: 'string',
      placeholder: 'ID',
      description: 'extra SPIFFE ID aliasing the agent that uses it',
    },
    ttl: {
      type: 'string',
      placeholder: 'DURATION',
      description: 'how long the token stays usable',
      defaultText: '10m',
    },
  },
  async run(ctx, flags) {
    const body: Record<string, unknown> = {};
    const spiffeId = flags.string('spiffe-id');
    if (spiffeId !== undefined) body['spiffe_id'] = issuedIdFlag('spiffe-id', spiffeId);
    const ttl = ttlFlag('ttl', flags.string('ttl'));
    if (ttl !== undefined) body['ttl'] = ttl;
    const response = await ctx.client().request('POST', '/v1/join-tokens', { body });
    if (ctx.output === 'json') {
      printRaw(ctx, response);
      return 0;
    }
    const token = jsonBody<{ token: string; spiffe_id?: string; expires_at?: number }>(response);
    const rows: Array<readonly [string, string]> = [['Token', token.token]];
    if (token.spiffe_id) rows.push(['SPIFFE ID', token.spiffe_id]);
    rows.push(['Expires at', formatTime(token.expires_at)]);
    ctx.io.stdout.write(formatBlock(rows));
    return 0;
  },
};

export const tokenCommands: readonly CommandSpec[] = [generate];
