// Trust bundles: our own (read-only here; the CA publishes it) and federated ones set by operators.
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  bundleFromPem,
  bundleToPem,
  encodeSpiffeBundle,
  parseSpiffeBundle,
  type TrustBundle,
} from '../../../spiffe/bundle.js';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { parseTrustDomain, type TrustDomain } from '../../../spiffe/id.js';
import { unsafeCharacterIn } from '../../../spiffe/text.js';
import { caCertificateProblem } from '../../../spiffe/x509-authority.js';
import type { StoredBundle } from '../../datastore/types.js';
import type { AdminDeps } from './deps.js';

const FORMATS = ['spiffe', 'pem'] as const;
type Format = (typeof FORMATS)[number];

const tdParam = {
  type: 'object',
  required: ['trustDomain'],
  properties: { trustDomain: { type: 'string', maxLength: 300 } },
} as const;
const formatQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { format: { type: 'string' } },
} as const;

export async function bundleRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { store, ca, clock, logger } = deps;

  const federatedDomain = (raw: string): TrustDomain => {
    const td = parseTrustDomain(raw, 'trust_domain');
    if (td.equals(ca.trustDomain)) {
      throw new SigilError(
        'ERR_INPUT_INVALID',
        `trust_domain: "${td.name}" is this server's own trust domain; its bundle is managed by the CA (GET /v1/bundle)`,
        { field: 'trust_domain' },
      );
    }
    return td;
  };

  app.get<{ Querystring: { format?: string } }>(
    '/v1/bundle',
    { schema: { tags: ['bundles'], summary: "The server's own trust bundle", querystring: formatQuery } },
    async (request, reply) => sendBundle(reply, ca.bundle(), parseFormat(request.query.format)),
  );

  app.get('/v1/bundles', { schema: { tags: ['bundles'], summary: 'List federated bundles' } }, async () => {
    const all = await store.listBundles();
    return {
      bundles: all
        .filter((b) => b.trustDomain !== ca.trustDomain.name)
        .map((b) => storedToView(b, parseTrustDomain(b.trustDomain))),
    };
  });

  app.get<{ Params: { trustDomain: string }; Querystring: { format?: string } }>(
    '/v1/bundles/:trustDomain',
    {
      schema: {
        tags: ['bundles'],
        summary: 'Show a federated bundle',
        params: tdParam,
        querystring: formatQuery,
      },
    },
    async (request, reply) => {
      const format = parseFormat(request.query.format);
      const td = federatedDomain(request.params.trustDomain);
      const stored = await store.fetchBundle(td.name);
      if (!stored) throw notFound(td);
      return sendBundle(reply, parseSpiffeBundle(stored.bundleJson, td), format);
    },
  );

  app.put<{ Params: { trustDomain: string }; Body: { bundle?: unknown; pem?: string } }>(
    '/v1/bundles/:trustDomain',
    {
      schema: {
        tags: ['bundles'],
        summary: 'Set (create or replace) a federated bundle, as SPIFFE JSON or PEM',
        params: tdParam,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          maxProperties: 1,
          properties: {
            bundle: { anyOf: [{ type: 'object' }, { type: 'string' }] },
            pem: { type: 'string' },
          },
        },
      },
    },
    async (request) => {
      const td = federatedDomain(request.params.trustDomain);
      const { bundle, pem } = request.body;
      const parsed =
        pem !== undefined
          ? bundleFromPem(td, pem)
          : parseSpiffeBundle(typeof bundle === 'string' ? bundle : JSON.stringify(bundle), td);
      if (parsed.x509Authorities.length === 0 && parsed.jwtAuthorities.length === 0) {
        throw new SigilError('ERR_BUNDLE_INVALID', `bundle for "${td.name}" holds no authorities`, {
          field: 'body',
        });
      }
      checkAuthorities(td, parsed);
      const previous = await store.fetchBundle(td.name);
      // Keep sequences moving forward even when the operator's file carries none.
      const sequence = Math.max(parsed.sequence, (previous?.sequence ?? 0) + 1);
      const stored = await store.putBundle({
        trustDomain: td.name,
        bundleJson: encodeSpiffeBundle({ ...parsed, sequence }),
        sequence,
        updatedAtMs: clock.nowMs(),
      });
      logger.info(
        { trustDomain: td.name, sequence, x509Authorities: parsed.x509Authorities.length },
        'Federated bundle set',
      );
      return storedToView(stored, td);
    },
  );

  app.delete<{ Params: { trustDomain: string } }>(
    '/v1/bundles/:trustDomain',
    { schema: { tags: ['bundles'], summary: 'Delete a federated bundle', params: tdParam } },
    async (request, reply) => {
      const td = federatedDomain(request.params.trustDomain);
      await store.deleteBundle(td.name);
      logger.info({ trustDomain: td.name }, 'Federated bundle deleted');
      return reply.code(204).send();
    },
  );
}

/**
 * What a bundle holds is trusted to sign SVIDs: every X.509 authority must be a CA certificate that
 * may sign certificates, and key IDs (printed by the CLI) carry no control characters.
 */
function checkAuthorities(td: TrustDomain, bundle: TrustBundle): void {
  bundle.x509Authorities.forEach((der, i) => {
    const problem = caCertificateProblem(der, { keyUsageRequired: false });
    if (problem !== undefined) {
      throw new SigilError(
        'ERR_BUNDLE_INVALID',
        `bundle for "${td.name}": X.509 authority ${i}: ${problem.rule}; a trust bundle holds CA certificates only`,
        { field: 'body', reason: problem.reason },
      );
    }
  });
  bundle.jwtAuthorities.forEach((authority, i) => {
    const unsafe = unsafeCharacterIn(authority.kid);
    if (unsafe !== undefined) {
      throw new SigilError(
        'ERR_BUNDLE_INVALID',
        `bundle for "${td.name}": JWT authority ${i}: key ID ${quote(authority.kid)} contains a ${unsafe}`,
        { field: 'body', reason: 'unsafe-character' },
      );
    }
  });
}

function parseFormat(raw: string | undefined): Format {
  const format = (raw ?? 'spiffe') as Format;
  if (!FORMATS.includes(format)) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `format: must be one of ${FORMATS.join(', ')} (got ${quote(raw)})`,
      {
        field: 'format',
      },
    );
  }
  return format;
}

function sendBundle(reply: FastifyReply, bundle: TrustBundle, format: Format): FastifyReply {
  return format === 'pem'
    ? reply.type('application/x-pem-file').send(bundleToPem(bundle))
    : reply.type('application/json').send(encodeSpiffeBundle(bundle));
}

function storedToView(stored: StoredBundle, td: TrustDomain) {
  return {
    trust_domain: td.name,
    sequence: stored.sequence,
    updated_at: Math.floor(stored.updatedAtMs / 1000),
    bundle: JSON.parse(stored.bundleJson) as unknown,
  };
}

function notFound(td: TrustDomain): SigilError {
  return new SigilError('ERR_BUNDLE_NOT_FOUND', `no federated bundle for trust domain "${td.name}"`, {
    field: 'trust_domain',
  });
}
