// Join tokens: single-use, expiring secrets an agent presents to attest. The token value is returned
// once to the operator and never logged.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { parseWholeSecondsMs } from '../../../spiffe/duration.js';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { parseSpiffeId } from '../../../spiffe/id.js';
import { checkNotReserved } from '../../../spiffe/sigil-ids.js';
import type { AdminDeps } from './deps.js';
import { durationSchema } from './schemas.js';

const DEFAULT_TOKEN_TTL = '10m';
/** A join token is a bootstrap secret: a long-lived one is a standing credential. */
const MAX_TOKEN_TTL_MS = 7 * 24 * 3_600_000;

export async function tokenRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { store, clock, ca, logger } = deps;
  app.post<{ Body: { ttl?: number | string; spiffe_id?: string } }>(
    '/v1/join-tokens',
    {
      schema: {
        tags: ['join tokens'],
        summary: 'Generate a single-use join token',
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { ttl: durationSchema, spiffe_id: { type: 'string', maxLength: 2048 } },
        },
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const ttlMs = parseWholeSecondsMs(body.ttl ?? DEFAULT_TOKEN_TTL, 'body.ttl');
      if (ttlMs > MAX_TOKEN_TTL_MS) {
        throw new SigilError(
          'ERR_INPUT_INVALID',
          `body.ttl: ${quote(body.ttl)} is longer than the 7-day maximum`,
          {
            field: 'body.ttl',
          },
        );
      }
      let alias: string | null = null;
      if (body.spiffe_id !== undefined) {
        const id = parseSpiffeId(body.spiffe_id, 'body.spiffe_id');
        if (!id.trustDomain.equals(ca.trustDomain) || id.isTrustDomainId) {
          throw new SigilError(
            'ERR_SPIFFE_ID_INVALID',
            `body.spiffe_id: ${quote(body.spiffe_id)} must be a path in trust domain "${ca.trustDomain.name}"`,
            { field: 'body.spiffe_id' },
          );
        }
        alias = checkNotReserved(id, 'body.spiffe_id').toString();
      }
      const nowMs = clock.nowMs();
      const token = await store.createJoinToken({
        token: randomUUID(),
        expiresAtMs: nowMs + ttlMs,
        spiffeId: alias,
        createdAtMs: nowMs,
      });
      logger.info({ alias, expiresAt: new Date(token.expiresAtMs).toISOString() }, 'Join token generated');
      return reply.code(201).send({
        token: token.token,
        spiffe_id: token.spiffeId,
        expires_at: Math.floor(token.expiresAtMs / 1000),
      });
    },
  );
}
