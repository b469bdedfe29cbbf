// Applies edits of the proxy config file to the running upstream services: services added, changed
// or removed, and outbound listeners pointed at another service, take effect at once; the other
// changes (listen addresses, inbound listeners, identity, limits) are logged as waiting for a
// restart. A file that does not check, or that would leave a running listener without its service,
// keeps the previous config in force and says why; so does one that would remove a service the
// routes in force name (follow-routes.ts), and the routes are checked again after a change.
import type { Clock } from '../../spiffe/clock.js';
import type { ProxyConfig } from '../config.js';
import { diffProxyConfig, watchProxyConfig } from '../config-watch.js';
import type { ProxyLogger } from '../logger.js';
import type { RoutesFollower } from './follow-routes.js';
import type { UpstreamServices } from './services.js';

export function followServiceChanges(
  file: string,
  initial: ProxyConfig,
  services: UpstreamServices,
  routes: Map<string, string>,
  options: {
    clock: Clock;
    logger: ProxyLogger;
    env?: Readonly<Record<string, string | undefined>>;
    /** The routes file's follower, when there is one. */
    routeTable?: RoutesFollower;
  },
): { close(): void } {
  const { logger } = options;
  let current = initial;
  return watchProxyConfig(file, {
    clock: options.clock,
    env: options.env,
    onChange: (next) => {
      const change = diffProxyConfig(current, next);
      const nextRoutes = new Map(routes);
      for (const outbound of next.outbound)
        if (nextRoutes.has(outbound.name)) nextRoutes.set(outbound.name, outbound.service);
      const names = new Set(next.services.map((service) => service.name));
      const orphaned = [...nextRoutes]
        .filter(([, service]) => !names.has(service))
        .map(([listener]) => listener);
      if (orphaned.length > 0) {
        logger.error(
          { file, listeners: orphaned },
          'Config change rejected: running listeners would lose their service; the previous services stay in force',
        );
        return;
      }
      const unrouted = [...(options.routeTable?.namedServices() ?? [])].filter((name) => !names.has(name));
      if (unrouted.length > 0) {
        logger.error(
          { file, services: unrouted },
          'Config change rejected: the routes in force name services it removes; edit the routes first. The previous services stay in force',
        );
        return;
      }
      current = next;
      for (const [listener, service] of nextRoutes) routes.set(listener, service);
      services
        .apply(next.services, routes)
        .catch((err: unknown) => logger.warn({ err: String(err) }, 'Closing a removed service failed'));
      if (change.services.length > 0) options.routeTable?.servicesChanged(names);
      if (change.services.length > 0 || change.rerouted.length > 0) {
        logger.info({ file, services: change.services, rerouted: change.rerouted }, 'Services reloaded');
      }
      if (change.needsRestart.length > 0) {
        logger.warn(
          { file, changes: change.needsRestart },
          'Config changes that take effect only after a restart',
        );
      }
    },
    onError: (err) =>
      logger.error({ file, err: err.message }, 'Config file rejected; the previous config stays in force'),
  });
}
