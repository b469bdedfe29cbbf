// The proxy's admin port: /live, /ready (true once the proxy holds an identity and its listeners are
// up), /metrics (Prometheus) and /config (what is running, for operators; no keys). Plaintext on
// loopback by default, under the same connection cap and HTTP timeouts as every listener.
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Address } from './config.js';
import { capConnections, type ListenerGuard } from './guard.js';
import { createGuardedHttpServer } from './guarded-http.js';

export interface ProxyAdminOptions {
  readonly listen: Address;
  readonly registry: Registry;
  /** The admin listener's limits, counting and logging. */
  readonly guard: ListenerGuard;
  isReady(): boolean;
  /** What a not-ready proxy waits for, in the /ready answer ("an identity from the Workload API"). */
  waitingFor(): string;
  configDump(): unknown;
}

export async function startProxyAdmin(
  options: ProxyAdminOptions,
): Promise<{ address: AddressInfo; close(): Promise<void> }> {
  const server = createGuardedHttpServer(options.guard, { emittedConnections: false });
  capConnections(server, options.guard);
  server.on('request', (request, response) => {
    const send = (status: number, body: unknown, type = 'application/json') => {
      response.writeHead(status, { 'content-type': type });
      response.end(typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`);
    };
    switch (request.url?.split('?')[0]) {
      case '/live':
        return send(200, { status: 'live' });
      case '/ready':
        return options.isReady()
          ? send(200, { status: 'ready' })
          : send(503, { status: `waiting for ${options.waitingFor()}` });
      case '/metrics':
        options.registry.metrics().then(
          (text) => send(200, text, options.registry.contentType),
          (err: Error) => send(500, { error: err.message }),
        );
        return;
      case '/config':
        return send(200, options.configDump());
      default:
        return send(404, { error: `no route ${request.url}; try /ready, /live, /metrics or /config` });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
