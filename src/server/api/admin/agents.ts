// Attested agents: list, show, evict (must attest again) and ban (can neither renew nor re-attest).
import type { FastifyInstance } from 'fastify';
import { parseSpiffeId } from '../../../spiffe/id.js';
import type { AttestedNode } from '../../datastore/types.js';
import type { AdminDeps } from './deps.js';
import { entryToView } from './entry-codec.js';
import { parsePage } from './errors.js';
import { pageQuery } from './schemas.js';

const agentParam = {
  type: 'object',
  required: ['spiffeId'],
  properties: { spiffeId: { type: 'string', maxLength: 2048 } },
} as const;

export function agentToView(node: AttestedNode) {
  return {
    spiffe_id: node.spiffeId,
    attestation_type: node.attestationType,
    serial: node.certSerial,
    expires_at: Math.floor(node.certNotAfterMs / 1000),
    selectors: node.selectors.map((s) => ({ type: s.type, value: s.value })),
    banned: node.banned,
    can_reattest: node.canReattest,
    created_at: Math.floor(node.createdAtMs / 1000),
    updated_at: Math.floor(node.updatedAtMs / 1000),
  };
}

export async function agentRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { store, clock, logger } = deps;
  const idOf = (raw: string) => parseSpiffeId(raw, 'spiffe_id').toString();

  app.get<{ Querystring: { page_size?: string; page_token?: string } }>(
    '/v1/agents',
    { schema: { tags: ['agents'], summary: 'List attested agents', querystring: pageQuery } },
    async (request) => {
      const page = await store.listNodes(parsePage(request.query));
      return {
        agents: page.items.map(agentToView),
        ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}),
      };
    },
  );
  app.get<{ Params: { spiffeId: string } }>(
    '/v1/agents/:spiffeId',
    { schema: { tags: ['agents'], summary: 'Show one agent (ID URL-encoded)', params: agentParam } },
    async (request) => ({ agent: agentToView(await store.fetchNode(idOf(request.params.spiffeId))) }),
  );
  app.get<{ Params: { spiffeId: string } }>(
    '/v1/agents/:spiffeId/authorized-entries',
    {
      schema: {
        tags: ['agents'],
        summary: 'Which entries an agent is authorized for, and through which IDs (explain)',
        params: agentParam,
      },
    },
    async (request) => {
      const agentId = idOf(request.params.spiffeId);
      return {
        agent_id: agentId,
        aliases: deps.index.aliasesOf(agentId),
        entries: deps.index.explain(agentId).map(({ entry, via }) => ({ entry: entryToView(entry), via })),
      };
    },
  );
  app.delete<{ Params: { spiffeId: string } }>(
    '/v1/agents/:spiffeId',
    { schema: { tags: ['agents'], summary: 'Evict an agent: it must attest again', params: agentParam } },
    async (request) => {
      const node = await store.deleteNode(idOf(request.params.spiffeId));
      logger.info({ agentId: node.spiffeId }, 'Agent evicted');
      return { agent: agentToView(node) };
    },
  );
  app.post<{ Params: { spiffeId: string } }>(
    '/v1/agents/:spiffeId/ban',
    {
      schema: {
        tags: ['agents'],
        summary: 'Ban an agent: no renewal, no re-attestation',
        params: agentParam,
      },
    },
    async (request) => {
      const node = await store.banNode(idOf(request.params.spiffeId), clock.nowMs());
      logger.warn({ agentId: node.spiffeId }, 'Agent banned');
      return { agent: agentToView(node) };
    },
  );
}
