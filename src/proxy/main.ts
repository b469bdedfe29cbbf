// Composition root of sigil-proxy: the admin port first (not ready), then the identity from the
// Workload API (the proxy waits for it rather than serving without one), the policy (watched and
// reloaded), and the listeners. Depends only on src/sdk and src/spiffe, never on server or agent code.
import pino, { type Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { X509Source, type X509Svid } from '../sdk/index.js';
import type { Clock } from '../spiffe/clock.js';
import { systemClock } from '../spiffe/clock.js';
import { checkSocketForClient } from '../spiffe/socket-dir.js';
import { rethrowListenError } from '../spiffe/tcp-listen.js';
import { startProxyAdmin } from './admin.js';
import { policyAuthorizer } from './authorizer.js';
import { ADMIN_LISTENER, type ProxyConfig } from './config.js';
import { createListenerGuard } from './guard.js';
import {
  createProxyMetrics,
  type InboundListener,
  type OutboundListener,
  ProxyIdentity,
  startInbound,
  startOutbound,
} from './index.js';
import { followServiceChanges } from './outbound/follow-config.js';
import { followRoutes, type RoutesFollower } from './outbound/follow-routes.js';
import type { GrpcRouting } from './outbound/h2-streams.js';
import { createRouteMetrics } from './outbound/route-metrics.js';
import { OutboundRouter } from './outbound/router.js';
import { createServiceMetrics } from './outbound/service-metrics.js';
import { UpstreamServices } from './outbound/services.js';
import { type PolicySet, parsePolicyFile, watchPolicyFile } from './policy/index.js';
import { SvidChoice } from './svid-choice.js';
import type { RequestTracer } from './tracing/request-tracer.js';

export interface RunningProxy {
  readonly logger: Logger;
  readonly adminPort: number;
  /** Bound ports by listener name (useful with port 0). */
  readonly ports: ReadonlyMap<string, number>;
  close(): Promise<void>;
}

export async function startProxy(
  config: ProxyConfig,
  /** uid: this process's, whose Workload API sockets (and root's) the proxy trusts; process.getuid() by default. */
  /**
   * configFile: where `config` came from; watched, and changes to upstream services applied live.
   * env: what the file's defaults read (SPIFFE_ENDPOINT_SOCKET), for reloads.
   */
  options: {
    clock?: Clock;
    logger?: Logger;
    uid?: number;
    configFile?: string;
    env?: Readonly<Record<string, string | undefined>>;
  } = {},
): Promise<RunningProxy> {
  const clock = options.clock ?? systemClock;
  const uid = options.uid ?? process.getuid!();
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      base: { service: 'sigil-proxy' },
      timestamp: pino.stdTimeFunctions.isoTime,
    });
  const cleanups: Array<() => unknown> = [];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };
  const registry = new Registry();
  // Prefix without "process_": prom-client's own names start with it (process_cpu_seconds_total).
  collectDefaultMetrics({ register: registry, prefix: 'sigil_proxy_' });
  let ready = false;
  let identity: ProxyIdentity | null = null;
  let policy: PolicySet = parsePolicyFile('policies: []\n', '(no policy file)');
  const inboundListeners: InboundListener[] = [];
  const metrics = createProxyMetrics(registry);
  let describeServices: () => unknown[] = () => [];
  let router: OutboundRouter | undefined;
  try {
    const admin = await startProxyAdmin({
      listen: config.admin,
      registry,
      guard: createListenerGuard({ listener: ADMIN_LISTENER, limits: config.limits, metrics, logger, clock }),
      isReady: () => ready,
      waitingFor: () =>
        config.spiffeId === null
          ? 'an identity from the Workload API'
          : `${config.spiffeId} from the Workload API`,
      configDump: () => ({
        workload_api: config.workloadApi,
        spiffe_id: config.spiffeId,
        identity: identity ? { spiffe_id: identity.spiffeId } : null,
        policy_file: config.policyFile,
        policies: policy.policies.map((p) => ({
          name: p.name,
          action: p.action,
          dry_run: p.dryRun,
          rules: p.rules.length,
        })),
        limits: config.limits,
        path_normalization: config.pathNormalization,
        inbound: config.inbound,
        outbound: config.outbound,
        tracing: config.tracing,
        access_log: config.accessLog,
        services: describeServices(),
        routes_file: config.routesFile,
        routes: router?.current.routes ?? [],
      }),
    }).catch(rethrowListenError({ setting: 'admin', ...config.admin }));
    cleanups.push(() => admin.close());

    if (config.policyFile) {
      const watch = watchPolicyFile(config.policyFile, {
        clock,
        onChange: (set) => {
          policy = set;
          logger.info({ policies: set.policies.length, file: config.policyFile }, 'Policy reloaded');
          for (const listener of inboundListeners) listener.reauthorize();
        },
        onError: (err) =>
          logger.error(
            { err: err.message, file: config.policyFile },
            'Policy file rejected; the previous policy stays in force',
          ),
      });
      policy = watch.current();
      cleanups.push(() => watch.close());
    }

    logger.info(
      { workloadApi: config.workloadApi, spiffeId: config.spiffeId ?? undefined },
      'Waiting for an identity from the Workload API',
    );
    const choice = config.spiffeId === null ? null : new SvidChoice<X509Svid>(config.spiffeId, logger);
    const source = await X509Source.create({
      address: config.workloadApi,
      pickSvid: choice?.pick,
      clock,
      // A socket another user planted would hand us their SVIDs and bundles; refusals reach onError.
      checkSocket: (socketPath) =>
        checkSocketForClient(socketPath, { uid, owner: config.workloadApiOwner, field: 'workload_api' }),
      // Without this a sidecar whose uid matches no entry would wait in silence.
      onError: (err) =>
        logger.warn({ code: err.code, err: err.message }, 'Workload API: no identity yet, retrying'),
    });
    cleanups.push(() => source.close());
    // The first update may lack the configured ID (an entry not synced yet): wait, still not ready.
    if (choice !== null) await choice.whenOffered(source);
    const proxyIdentity = new ProxyIdentity(source, {
      clock,
      onError: (err) =>
        logger.error({ err: (err as Error).message }, 'Rotated identity rejected; keeping the current one'),
    });
    identity = proxyIdentity;
    cleanups.push(() => proxyIdentity.close());
    proxyIdentity.onUpdate(() => logger.info({ spiffeId: proxyIdentity.spiffeId }, 'Identity rotated'));

    // Loaded only when configured: a sidecar without tracing never evaluates OpenTelemetry.
    let tracer: RequestTracer | null = null;
    if (config.tracing !== null || config.accessLog !== null) {
      const { startObservability } = await import('./tracing/index.js');
      const observability = await startObservability(config.tracing, config.accessLog, {
        registry,
        logger,
        clock,
        random: Math.random,
        spiffeId: proxyIdentity.spiffeId,
      });
      tracer = observability.tracer;
      cleanups.push(() => observability.close());
    }

    const authorizer = policyAuthorizer(() => policy, registry, logger);
    const ports = new Map<string, number>();
    for (const [i, inbound] of config.inbound.entries()) {
      const listener: InboundListener = await startInbound({
        ...inbound,
        pathNormalization: config.pathNormalization,
        identity: proxyIdentity,
        authorizer,
        metrics,
        logger,
        clock,
        tracer,
      }).catch(rethrowListenError({ setting: `inbound[${i}].listen`, ...inbound.listen }));
      cleanups.push(() => listener.close());
      inboundListeners.push(listener);
      ports.set(inbound.name, listener.address.port);
    }
    const services = new UpstreamServices({
      identity: proxyIdentity,
      clock,
      random: Math.random,
      metrics,
      serviceMetrics: createServiceMetrics(registry),
      logger,
    });
    cleanups.push(() => services.close());
    // Listener name → service name, for the listeners running now (a reload cannot add one).
    const routes = new Map(config.outbound.map((outbound) => [outbound.name, outbound.service]));
    await services.apply(config.services, routes);
    let routeTable: RoutesFollower | undefined;
    let grpcRouting: GrpcRouting | undefined;
    if (config.routesFile !== null) {
      const routed = new OutboundRouter({
        services,
        random: Math.random,
        clock,
        metrics: createRouteMetrics(registry),
      });
      router = routed;
      const names = new Set(config.services.map((service) => service.name));
      const follower = followRoutes(config.routesFile, routed, names, { clock, logger });
      cleanups.push(() => follower.close());
      routeTable = follower;
      // The gRPC relay of http2 listeners reads the same table and services as the router.
      grpcRouting = {
        routes: () => routed.current,
        service: (name: string) => services.get(name),
        random: Math.random,
      };
    }
    for (const [i, outbound] of config.outbound.entries()) {
      const listener: OutboundListener = await startOutbound({
        ...outbound,
        upstream: services.ref(outbound.name),
        router,
        grpcRouting,
        identity: proxyIdentity,
        metrics,
        logger,
        clock,
        tracer,
      }).catch(rethrowListenError({ setting: `outbound[${i}].listen`, ...outbound.listen }));
      cleanups.push(() => listener.close());
      ports.set(outbound.name, listener.address.port);
    }
    if (options.configFile !== undefined) {
      const watch = followServiceChanges(options.configFile, config, services, routes, {
        clock,
        logger,
        env: options.env,
        routeTable,
      });
      cleanups.push(() => watch.close());
    }
    describeServices = () => services.describe();
    ready = true;
    logger.info(
      {
        spiffeId: proxyIdentity.spiffeId,
        adminPort: admin.address.port,
        listeners: Object.fromEntries(ports),
      },
      'Sigil proxy started',
    );
    return { logger, adminPort: admin.address.port, ports, close };
  } catch (err) {
    await close();
    throw err;
  }
}
