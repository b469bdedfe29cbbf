// Builds the admin REST app (fastify) without binding it, so tests drive it with app.inject() and
// main.ts decides where it listens: the owner-only Unix socket (trusted by file permissions) or TCP
// with mTLS (admin SVIDs only). Either way its connections are bounded (connection-limits.ts).
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import { capConnections } from '../../../spiffe/connection-cap.js';
import { connectionCapRefusals, refusalLog } from '../refusal-log.js';
import { agentRoutes } from './agents.js';
import { mtlsAdminGuard } from './auth.js';
import { authorityRoutes } from './authorities.js';
import { bundleRoutes } from './bundles.js';
import { type AdminRefusal, limitedServerOptions } from './connection-limits.js';
import type { AdminDeps } from './deps.js';
import { entryRoutes } from './entries.js';
import { installErrorHandler } from './errors.js';
import { healthRoutes } from './health.js';
import { type AdminApiLimits, DEFAULT_ADMIN_API_LIMITS } from './limits.js';
import { noQuery } from './schemas.js';
import { svidRoutes } from './svids.js';
import { tokenRoutes } from './tokens.js';

/** Admin bodies are small; 1 MiB fits a 500-entry batch and refuses floods (413). */
export const ADMIN_BODY_LIMIT_BYTES = 1024 * 1024;

export interface AdminAppOptions {
  /** local: the Unix socket, where file permissions already restrict callers; mtls: TCP with admin SVIDs. */
  readonly auth: 'local' | 'mtls';
  /** TLS server options for `mtls` (key, cert, requestCert…). */
  readonly https?: Record<string, unknown>;
  /** Timeouts and connection cap (config admin_api); DEFAULT_ADMIN_API_LIMITS when absent. */
  readonly limits?: AdminApiLimits;
}

export async function buildAdminApp(deps: AdminDeps, options: AdminAppOptions): Promise<FastifyInstance> {
  const log = deps.logger.child({ component: 'admin-api', listener: options.auth });
  const limits = options.limits ?? DEFAULT_ADMIN_API_LIMITS;
  const refusals = refusalLog<AdminRefusal>({
    clock: deps.clock,
    logger: log,
    message: 'Admin API connections refused',
    counter: deps.metrics.adminApiRefusals,
  });
  const app = Fastify({
    loggerInstance: log,
    // Per-request log lines would drown the audit events the routes log themselves.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ADMIN_BODY_LIMIT_BYTES,
    ...limitedServerOptions(limits, refusals, deps.clock, options.https),
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, useDefaults: false },
    },
  } as FastifyServerOptions);
  if (options.https) capConnections(app.server, limits.maxConnections, connectionCapRefusals(refusals));
  app.addHook('onClose', async () => refusals.close());
  installErrorHandler(app);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Sigil server admin API', version: '1' },
      tags: ['entries', 'join tokens', 'agents', 'bundles', 'svids', 'authorities', 'health'].map((name) => ({
        name,
      })),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  // Every route registered from here on refuses query parameters it does not declare: a filter
  // that is silently ignored (`?spiffe_id=` on a route without it) answers as if it had matched.
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, querystring: route.schema?.querystring ?? noQuery };
  });
  if (options.auth === 'mtls') app.addHook('onRequest', mtlsAdminGuard(deps));
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.adminRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    deps.metrics.adminRequestSeconds.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  for (const routes of [
    healthRoutes,
    entryRoutes,
    tokenRoutes,
    agentRoutes,
    bundleRoutes,
    svidRoutes,
    authorityRoutes,
  ]) {
    await app.register(async (scope) => routes(scope, deps));
  }
  return app;
}
