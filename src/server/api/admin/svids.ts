// Operator-minted SVIDs (like `spire-server x509 mint` / `jwt mint`): for bootstrapping, tests and
// tools. With a CSR the key never leaves the caller; without one the server makes a key and returns it.
import { createPublicKey } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { bundleToPem } from '../../../spiffe/bundle.js';
import { checkOperatorDnsName } from '../../../spiffe/dns-name.js';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { parseWorkloadSpiffeId, type SpiffeId } from '../../../spiffe/id.js';
import { checkJwtAudience } from '../../../spiffe/jwt-svid.js';
import { generateKey } from '../../../spiffe/keys.js';
import { encodePem } from '../../../spiffe/pem.js';
import { checkNotReserved } from '../../../spiffe/sigil-ids.js';
import type { AdminDeps } from './deps.js';
import { durationSchema } from './schemas.js';
import { svidTtlMs } from './ttl.js';

export async function svidRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { ca, metrics, logger } = deps;

  const workloadId = (raw: string): SpiffeId => {
    const id = parseWorkloadSpiffeId(raw, 'body.spiffe_id');
    if (!id.trustDomain.equals(ca.trustDomain)) {
      throw new SigilError(
        'ERR_SPIFFE_ID_INVALID',
        `body.spiffe_id: ${quote(raw)} is not in this server's trust domain "${ca.trustDomain.name}"`,
        { field: 'body.spiffe_id' },
      );
    }
    return checkNotReserved(id, 'body.spiffe_id');
  };
  const ttlOf = (raw: number | string | undefined) =>
    raw === undefined ? undefined : svidTtlMs(raw, 'body.ttl', deps.minSvidTtlMs);

  app.post<{ Body: { spiffe_id: string; ttl?: number | string; dns_names?: string[]; csr?: string } }>(
    '/v1/x509-svids',
    {
      schema: {
        tags: ['svids'],
        summary: 'Mint an X.509-SVID',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['spiffe_id'],
          properties: {
            spiffe_id: { type: 'string', maxLength: 2048 },
            ttl: durationSchema,
            dns_names: { type: 'array', items: { type: 'string', maxLength: 253 }, maxItems: 64 },
            csr: { type: 'string', maxLength: 64 * 1024 },
          },
        },
      },
    },
    async (request) => {
      const body = request.body;
      const spiffeId = workloadId(body.spiffe_id);
      const ttlMs = ttlOf(body.ttl);
      const dnsNames = (body.dns_names ?? []).map((name, i) => {
        checkOperatorDnsName(name, `body.dns_names[${i}]`);
        return name;
      });
      const stopTimer = metrics.svidIssueSeconds.startTimer({ type: 'x509' });
      const key = body.csr === undefined ? generateKey('ec-p256') : null;
      const issued = key
        ? ca.signX509Svid({ spiffeId, publicKey: createPublicKey(key), dnsNames, ttlMs })
        : ca.signCsr({ csr: body.csr!, spiffeId, dnsNames, ttlMs });
      stopTimer();
      metrics.svidsIssued.inc({ type: 'x509', caller: 'admin' });
      logger.info(
        { spiffeId: spiffeId.toString(), expiresAt: new Date(issued.expiresAtMs).toISOString() },
        'X.509-SVID minted',
      );
      return {
        spiffe_id: spiffeId.toString(),
        svid_pem: issued.chain.map((der) => encodePem('CERTIFICATE', der)).join(''),
        ...(key ? { key_pem: key.export({ format: 'pem', type: 'pkcs8' }) as string } : {}),
        bundle_pem: bundleToPem(ca.bundle()),
        expires_at: Math.floor(issued.expiresAtMs / 1000),
      };
    },
  );

  app.post<{ Body: { spiffe_id: string; audience: string[]; ttl?: number | string } }>(
    '/v1/jwt-svids',
    {
      schema: {
        tags: ['svids'],
        summary: 'Mint a JWT-SVID',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['spiffe_id', 'audience'],
          properties: {
            spiffe_id: { type: 'string', maxLength: 2048 },
            // Limits are checkJwtAudience's, the one audience check every edge shares.
            audience: { type: 'array', items: { type: 'string' } },
            ttl: durationSchema,
          },
        },
      },
    },
    async (request) => {
      const body = request.body;
      const spiffeId = workloadId(body.spiffe_id);
      checkJwtAudience(body.audience, 'body.audience');
      const stopTimer = metrics.svidIssueSeconds.startTimer({ type: 'jwt' });
      const minted = ca.mintJwtSvid({ spiffeId, audience: body.audience, ttlMs: ttlOf(body.ttl) });
      stopTimer();
      metrics.svidsIssued.inc({ type: 'jwt', caller: 'admin' });
      logger.info({ spiffeId: spiffeId.toString(), audience: body.audience }, 'JWT-SVID minted');
      return {
        spiffe_id: spiffeId.toString(),
        token: minted.token,
        expires_at: Math.floor(minted.expiresAtMs / 1000),
      };
    },
  );
}
