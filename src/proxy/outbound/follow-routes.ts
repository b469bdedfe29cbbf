// Keeps the router's table current: the routes file is loaded at start (a broken one stops the
// proxy, as a broken policy file does), watched (a change applies without a restart; a broken
// change keeps the previous table and says why), and read again whenever the configured services
// change, since whether it checks depends on them: a route naming a service the config does not
// have yet is refused, and takes effect once the config adds the service. The other way round,
// a config change that would remove a service the table in force names is refused by
// follow-config.ts (`namedServices`), as one that would orphan a listener is: routes are edited
// first, then the config.
import type { Clock } from '../../spiffe/clock.js';
import { isSigilError, type SigilError } from '../../spiffe/errors.js';
import type { ProxyLogger } from '../logger.js';
import type { RouteTable } from '../routes/index.js';
import { loadRouteFile, watchRouteFile } from '../routes/index.js';
import type { OutboundRouter } from './router.js';

export interface RoutesFollower {
  /** Every service the table in force names: parents, backends, shadows. */
  namedServices(): ReadonlySet<string>;
  /** The configured services changed: read the file again against them. */
  servicesChanged(services: ReadonlySet<string>): void;
  close(): void;
}

export function followRoutes(
  file: string,
  router: OutboundRouter,
  initialServices: ReadonlySet<string>,
  options: {
    clock: Clock;
    logger: ProxyLogger;
    pollIntervalMs?: number;
    debounceMs?: number;
  },
): RoutesFollower {
  const { logger } = options;
  let services = initialServices;
  const apply = (table: RouteTable, why: string) => {
    router.setTable(table);
    logger.info({ file, routes: table.routes.map((route) => route.name) }, why);
  };
  const rejected = (err: SigilError) =>
    logger.error({ file, err: err.message }, 'Routes file rejected; the previous routes stay in force');
  const watch = watchRouteFile(file, () => services, {
    onChange: (table) => apply(table, 'Routes reloaded'),
    onError: rejected,
    onWatchFailure: (err) =>
      logger.warn({ file, err: err.message }, 'Routes file watch failed; polling only'),
    clock: options.clock,
    pollIntervalMs: options.pollIntervalMs,
    debounceMs: options.debounceMs,
  });
  router.setTable(watch.current());
  return {
    namedServices: () => namedServices(router.current),
    servicesChanged(next) {
      services = next;
      try {
        apply(loadRouteFile(file, services), 'Routes checked again against the new services');
      } catch (err) {
        if (!isSigilError(err)) throw err;
        rejected(err);
      }
    },
    close: () => watch.close(),
  };
}

/** The services a table names: what a config reload must keep. */
export function namedServices(table: RouteTable): ReadonlySet<string> {
  const names = new Set<string>();
  for (const [parent, entries] of table.http) {
    names.add(parent);
    for (const { rule } of entries) {
      for (const backend of rule.backends) names.add(backend.service);
      for (const mirror of rule.mirrors) names.add(mirror.service);
    }
  }
  for (const [parent, entries] of table.grpc) {
    names.add(parent);
    for (const { rule } of entries) for (const backend of rule.backends) names.add(backend.service);
  }
  return names;
}
