// Probes and metrics: no authentication, on every admin listener.
import type { FastifyInstance } from 'fastify';
import { renderServerMetrics } from '../../metrics.js';
import type { AdminDeps } from './deps.js';

export async function healthRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness' } }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    { schema: { tags: ['health'], summary: 'Readiness: datastore and CA' } },
    async (_request, reply) => {
      const ready = await deps.isReady().catch(() => false);
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
    },
  );
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const { contentType, body } = await renderServerMetrics(deps.registry, deps.metrics, () =>
      deps.store.countEntries(),
    );
    return reply.type(contentType).send(body);
  });
}
