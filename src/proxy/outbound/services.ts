// The upstream services of one sidecar, kept across config reloads: a reload reconfigures the
// services that stay (their state survives), starts new ones, closes those gone, and repoints each
// outbound listener's ServiceRef. Service events become log lines and metrics here.
import type { Clock } from '../../spiffe/clock.js';
import type { ProxyIdentity } from '../identity.js';
import type { ProxyLogger } from '../logger.js';
import type { ProxyMetrics } from '../metrics.js';
import type { ServiceConfig } from '../services/config.js';
import type { ServiceRef } from './listener.js';
import { type ServiceLog, UpstreamService } from './service.js';
import type { ServiceMetrics } from './service-metrics.js';

export interface UpstreamServicesDeps {
  readonly identity: ProxyIdentity;
  readonly clock: Clock;
  readonly random: () => number;
  readonly metrics: ProxyMetrics;
  readonly serviceMetrics: ServiceMetrics;
  readonly logger: ProxyLogger;
}

export class UpstreamServices {
  private readonly services = new Map<string, UpstreamService>();
  private readonly refs = new Map<string, ServiceRef>();
  private readonly log: ServiceLog;

  constructor(private readonly deps: UpstreamServicesDeps) {
    this.log = serviceLog(deps);
    deps.serviceMetrics.watchStates({
      forEachEndpoint: (visit) => {
        for (const service of this.services.values()) {
          service.forEachEndpoint((endpoint, state) => visit(service.name, endpoint, state));
        }
      },
    });
  }

  /**
   * Brings the services to `configs` and points each listener (name → service name) at its service.
   * Returns the services closed, for the caller to await.
   */
  apply(configs: readonly ServiceConfig[], listeners: ReadonlyMap<string, string>): Promise<void> {
    const wanted = new Map(configs.map((config) => [config.name, config]));
    for (const config of configs) {
      const existing = this.services.get(config.name);
      if (existing === undefined) {
        this.services.set(
          config.name,
          new UpstreamService(config, {
            ...this.deps,
            cells: this.deps.serviceMetrics.service(config.name),
            log: this.log,
          }),
        );
      } else {
        existing.reconfigure(config);
      }
    }
    for (const [listener, serviceName] of listeners) {
      const service = this.services.get(serviceName);
      if (service === undefined)
        throw new Error(`listener ${listener} names service ${serviceName}, which is not configured`);
      const ref = this.refs.get(listener);
      if (ref === undefined) this.refs.set(listener, { service });
      else ref.service = service;
    }
    const gone = [...this.services.values()].filter((service) => !wanted.has(service.name));
    for (const service of gone) this.services.delete(service.name);
    return Promise.all(gone.map((service) => service.close())).then(() => {});
  }

  /** The running service of a name (the router's backends and shadows). */
  get(name: string): UpstreamService | undefined {
    return this.services.get(name);
  }

  /** The live reference a listener reads its service from. */
  ref(listener: string): ServiceRef {
    const ref = this.refs.get(listener);
    if (ref === undefined) throw new Error(`no service applied for listener ${listener}`);
    return ref;
  }

  describe(): unknown[] {
    return [...this.services.values()].map((service) => service.describe());
  }

  async close(): Promise<void> {
    await Promise.all([...this.services.values()].map((service) => service.close()));
    this.services.clear();
  }
}

function serviceLog({ logger, metrics, identity }: UpstreamServicesDeps): ServiceLog {
  return {
    connectFailed(service, endpoint, err, presentedId) {
      const reason = err.reason ?? err.code;
      // The connector fails with ERR_UNAVAILABLE to reach or handshake; anything else is verification.
      const isIdentityFailure = err.code !== 'ERR_UNAVAILABLE';
      if (isIdentityFailure)
        metrics.handshakeFailures.inc({ listener: service, direction: 'outbound', reason });
      logger.warn(
        {
          upstream_service: service,
          endpoint: endpoint.label,
          source_id: identity.spiffeId,
          destination_id: presentedId,
          expected_ids: endpoint.config.serverIds,
          reason,
          err: err.message,
        },
        isIdentityFailure ? 'Upstream identity refused' : 'Upstream connect failed',
      );
    },
    ejected(service, endpoint, untilMs, reason) {
      logger.warn(
        {
          upstream_service: service,
          endpoint: endpoint.label,
          reason,
          until: new Date(untilMs).toISOString(),
        },
        'Endpoint ejected',
      );
    },
    returned(service, endpoint) {
      logger.info(
        { upstream_service: service, endpoint: endpoint.label },
        'Endpoint returned after a successful probe',
      );
    },
    circuitOpened(service, untilMs) {
      logger.warn(
        { upstream_service: service, until: new Date(untilMs).toISOString() },
        'Circuit opened: too many tries to the service failed; callers get 503 circuit-open until a probe succeeds',
      );
    },
    circuitClosed(service) {
      logger.info({ upstream_service: service }, 'Circuit closed after a successful probe');
    },
    dnsFailed(service, err) {
      logger.warn(
        { upstream_service: service, err: err.message },
        'DNS resolution failed; keeping the last endpoints',
      );
    },
    endpointsChanged(service, endpoints) {
      logger.info(
        { upstream_service: service, endpoints: endpoints.map((endpoint) => endpoint.label) },
        'Service endpoints updated',
      );
    },
    poolCloseFailed(service, err) {
      logger.debug({ upstream_service: service, err: String(err) }, 'Closing a retired upstream pool failed');
    },
    pipelineStalled(service, endpoint, moved) {
      logger.debug(
        { upstream_service: service, endpoint: endpoint.label, moved },
        'Pipelined connection stalled; the requests queued behind its oldest were sent on other connections',
      );
    },
  };
}
