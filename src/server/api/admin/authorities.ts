// The CA's signing authorities (X.509 CAs and JWT keys) and their rotation, for operators: show the
// timeline, and force-prepare, activate, taint and revoke ("localauthority" in the CLI). Activate
// and revoke refuse what would lock agents out unless forced (`?force=true` or `{"force": true}`).
import type { FastifyInstance } from 'fastify';
import { quote, SigilError } from '../../../spiffe/errors.js';
import type { AdminDeps, AuthorityKind, AuthorityView, ForceOption } from './deps.js';

const KINDS: readonly AuthorityKind[] = ['x509', 'jwt'];

const kindParam = {
  type: 'object',
  required: ['kind'],
  properties: { kind: { type: 'string' } },
} as const;
const kindIdParam = {
  type: 'object',
  required: ['kind', 'id'],
  properties: { kind: { type: 'string' }, id: { type: 'string', maxLength: 128 } },
} as const;

// Query values are strings (no type coercion); the body is the JSON alternative.
const forceQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { force: { type: 'string', enum: ['true', 'false'] } },
} as const;
// Optional: a bare POST (no body) is the common case.
const forceBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { force: { type: 'boolean' } },
} as const;

interface ForceRequest {
  Querystring: { force?: 'true' | 'false' };
  Body: { force?: boolean } | undefined;
}

function forceOf(request: { query: ForceRequest['Querystring']; body: ForceRequest['Body'] }): ForceOption {
  return { force: request.query.force === 'true' || request.body?.force === true };
}

export function authorityToView(a: AuthorityView) {
  return {
    id: a.id,
    state: a.state,
    tainted: a.tainted,
    not_after: Math.floor(a.notAfterMs / 1000),
    created_at: Math.floor(a.createdAtMs / 1000),
    published_at: a.publishedAtMs === null ? null : Math.floor(a.publishedAtMs / 1000),
    activated_at: a.activatedAtMs === null ? null : Math.floor(a.activatedAtMs / 1000),
    next_event: a.nextEvent,
    next_event_at: a.nextEventAtMs === null ? null : Math.floor(a.nextEventAtMs / 1000),
    safe_to_activate_at: a.safeToActivateAtMs === null ? null : Math.ceil(a.safeToActivateAtMs / 1000),
    dependents:
      a.dependents === null
        ? null
        : {
            agents: a.dependents.agents,
            unknown_agents: a.dependents.unknownAgents,
            server_svid: a.dependents.serverSvid,
          },
  };
}

export async function authorityRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { ca, logger } = deps;
  const kindOf = (raw: string): AuthorityKind => {
    if (!(KINDS as readonly string[]).includes(raw)) {
      throw new SigilError(
        'ERR_INPUT_INVALID',
        `kind: must be one of ${KINDS.join(', ')} (got ${quote(raw)})`,
        {
          field: 'kind',
        },
      );
    }
    return raw as AuthorityKind;
  };

  app.get(
    '/v1/authorities',
    { schema: { tags: ['authorities'], summary: 'Signing authorities and their rotation timeline' } },
    async () => {
      const all = await ca.authorities();
      return { x509: all.x509.map(authorityToView), jwt: all.jwt.map(authorityToView) };
    },
  );

  app.post<{ Params: { kind: string } }>(
    '/v1/authorities/:kind/prepare',
    {
      schema: {
        tags: ['authorities'],
        summary: 'Prepare the next authority now (published in the bundle, not yet signing)',
        params: kindParam,
      },
    },
    async (request) => {
      const authority = await ca.prepare(kindOf(request.params.kind));
      logger.warn(
        { kind: request.params.kind, authorityId: authority.id },
        'Authority prepared by an operator',
      );
      return { authority: authorityToView(authority) };
    },
  );

  app.post<{ Params: { kind: string } } & ForceRequest>(
    '/v1/authorities/:kind/activate',
    {
      schema: {
        tags: ['authorities'],
        summary: 'Activate the prepared authority (refused before its publish lead unless forced)',
        params: kindParam,
        querystring: forceQuery,
        body: forceBody,
      },
    },
    async (request) => {
      const force = forceOf(request);
      const authority = await ca.activate(kindOf(request.params.kind), force);
      logger.warn(
        { kind: request.params.kind, authorityId: authority.id, forced: force.force },
        'Authority activated by an operator',
      );
      return { authority: authorityToView(authority) };
    },
  );

  app.post<{ Params: { kind: string; id: string } }>(
    '/v1/authorities/:kind/:id/taint',
    {
      schema: {
        tags: ['authorities'],
        summary: 'Taint an old authority: agents re-sign everything it signed',
        params: kindIdParam,
      },
    },
    async (request) => {
      const authority = await ca.taint(kindOf(request.params.kind), request.params.id);
      logger.warn({ kind: request.params.kind, authorityId: authority.id }, 'Authority tainted');
      return { authority: authorityToView(authority) };
    },
  );

  app.post<{ Params: { kind: string; id: string } } & ForceRequest>(
    '/v1/authorities/:kind/:id/revoke',
    {
      schema: {
        tags: ['authorities'],
        summary:
          'Remove a tainted authority from the bundle (refused while live SVIDs chain to it unless forced)',
        params: kindIdParam,
        querystring: forceQuery,
        body: forceBody,
      },
    },
    async (request) => {
      const force = forceOf(request);
      const authority = await ca.revoke(kindOf(request.params.kind), request.params.id, force);
      logger.warn(
        { kind: request.params.kind, authorityId: authority.id, forced: force.force },
        'Authority revoked',
      );
      return { authority: authorityToView(authority) };
    },
  );
}
