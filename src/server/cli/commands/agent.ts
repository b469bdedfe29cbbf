// `agent list|show|evict|ban`: attested agents (/v1/agents). Agent IDs go in the path URL-encoded.
import { jsonBody } from '../admin-client.js';
import type { FlagSpecs } from '../args.js';
import { type CommandContext, type CommandSpec, fetchAllPages, printRaw } from '../command.js';
import { formatAgent, formatTable, formatTime, type WireAgent } from '../format.js';
import { spiffeIdFlag } from '../values.js';

const AGENT_ID: FlagSpecs = {
  'spiffe-id': { type: 'string', placeholder: 'ID', description: "the agent's SPIFFE ID", required: true },
};

const list: CommandSpec = {
  name: 'agent list',
  summary: 'List attested agents, following every page.',
  flags: {},
  async run(ctx) {
    const agents = await fetchAllPages<WireAgent>(ctx, '/v1/agents', {}, 'agents');
    if (ctx.output === 'json') {
      ctx.io.stdout.write(`${JSON.stringify({ agents })}\n`);
      return 0;
    }
    ctx.io.stdout.write(`Found ${agents.length} ${agents.length === 1 ? 'agent' : 'agents'}\n`);
    if (agents.length > 0) {
      const rows = agents.map((a) => [
        a.spiffe_id,
        a.attestation_type ?? '',
        formatTime(a.expires_at),
        a.banned ? 'banned' : 'ok',
      ]);
      ctx.io.stdout.write(formatTable(['SPIFFE ID', 'ATTESTATION', 'EXPIRES AT', 'STATUS'], rows));
    }
    return 0;
  },
};

interface AgentAction {
  readonly name: string;
  readonly summary: string;
  readonly method: string;
  /** Appended to /v1/agents/{id}. */
  readonly suffix: string;
  /** Text output: this line and the ID, or the agent itself when absent. */
  readonly done?: string;
}

/** show, evict and ban differ only in method, path suffix and the line printed after. */
function agentAction({ name, summary, method, suffix, done }: AgentAction): CommandSpec {
  return {
    name: `agent ${name}`,
    summary,
    flags: AGENT_ID,
    async run(ctx: CommandContext, flags) {
      const id = spiffeIdFlag('spiffe-id', flags.string('spiffe-id')!);
      const response = await ctx.client().request(method, `/v1/agents/${encodeURIComponent(id)}${suffix}`);
      if (ctx.output === 'json') {
        printRaw(ctx, response);
        return 0;
      }
      if (done !== undefined) ctx.io.stdout.write(`${done} ${id}\n`);
      else ctx.io.stdout.write(formatAgent(jsonBody<{ agent: WireAgent }>(response).agent));
      return 0;
    },
  };
}

export const agentCommands: readonly CommandSpec[] = [
  list,
  agentAction({ name: 'show', summary: 'Show one agent.', method: 'GET', suffix: '' }),
  agentAction({
    name: 'evict',
    summary: 'Evict an agent: it must attest again to get SVIDs.',
    method: 'DELETE',
    suffix: '',
    done: 'Evicted agent',
  }),
  agentAction({
    name: 'ban',
    summary: 'Ban an agent: it can neither renew nor attest again.',
    method: 'POST',
    suffix: '/ban',
    done: 'Banned agent',
  }),
];
