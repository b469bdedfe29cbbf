// The endpoints of one upstream service, each with its own mTLS connector and undici Pool, and what
// the balancer keeps about it (latency EWMA, requests outstanding, when it joined, for slow start).
// The set follows config reloads and DNS answers by address and accepted IDs: an endpoint that
// stays keeps its pool, connections and statistics; one that leaves is closed once its requests
// finish. A connection budget shared by the service's endpoints enforces `max_connections`. With the
// service's `pipelining` on, safe requests go through pipelined lanes (pipelining.ts) before the pool.
import type { Clock } from '../../spiffe/clock.js';
import type { SigilError } from '../../spiffe/errors.js';
import { ProxyError } from '../errors.js';
import { Pool } from '../http-relay.js';
import type { ProxyIdentity } from '../identity.js';
import { PeakEwma } from '../resilience/balance/ewma.js';
import type { EndpointConfig, PipeliningConfig } from '../services/config.js';
import { type ConnectOptions, UpstreamConnector } from './connect.js';
import { Pipelining, type RequestDispatcher } from './pipelining.js';
import type { EndpointCells } from './service-metrics.js';

/** Sidecar-to-sidecar keep-alive: handshakes are the expensive part, so idle connections live longer than undici's 4s. */
const UPSTREAM_KEEP_ALIVE_MS = 30_000;

export interface EndpointDeps {
  readonly identity: ProxyIdentity;
  readonly clock: Clock;
  readonly connectTimeoutMs: () => number;
  readonly ewmaDecayMs: () => number;
  readonly connections: ConnectionBudget;
  /** The service's current `pipelining`, read per request so a reload applies at once; null: off. */
  readonly pipelining: () => PipeliningConfig | null;
  /** A stall moved `moved` pipelined requests to the pool. */
  readonly onPipelineStall: (endpoint: Endpoint, moved: number) => void;
  readonly onConnectFailure: (endpoint: Endpoint, err: SigilError, presentedId: string | null) => void;
  readonly onPoolCloseError: (err: unknown) => void;
}

/** Open upstream connections of one service, against its `max_connections`. */
export class ConnectionBudget {
  open = 0;
  constructor(public max: number) {}
}

export class Endpoint {
  readonly key: string;
  readonly label: string;
  readonly ewma: PeakEwma;
  outstanding = 0;
  readonly addedAtMs: number;
  /** This endpoint's metric cells, set by its service. */
  cells: EndpointCells | undefined;
  private readonly connector: UpstreamConnector;
  private pool: Pool;
  private pipelining: Pipelining | null = null;
  private pipeliningConfig: PipeliningConfig | null = null;

  constructor(
    readonly config: EndpointConfig,
    private readonly deps: EndpointDeps,
  ) {
    this.key = endpointKey(config);
    this.label = `${config.address.host}:${config.address.port}`;
    this.ewma = new PeakEwma(deps.ewmaDecayMs(), deps.clock);
    this.addedAtMs = deps.clock.nowMs();
    this.connector = new UpstreamConnector({
      host: config.address.host,
      port: config.address.port,
      serverIds: config.serverIds,
      identity: deps.identity,
      clock: deps.clock,
      connectTimeoutMs: deps.connectTimeoutMs(),
      onFailure: (err, presentedId) => deps.onConnectFailure(this, err, presentedId),
    });
    this.pool = this.makePool();
  }

  /** What requests to this endpoint go through: the pipelined lanes when on (they use the pool for the rest), else the pool. */
  get dispatcher(): RequestDispatcher {
    const config = this.deps.pipelining();
    if (config !== this.pipeliningConfig) this.renewPipelining(config);
    return this.pipelining ?? this.pool;
  }

  /** A verified connection under the service's connection budget, for opaque pipes and upgrades. */
  async connect(options?: ConnectOptions): ReturnType<UpstreamConnector['connect']> {
    const budget = this.deps.connections;
    if (budget.open >= budget.max) {
      throw new ProxyError(
        'overloaded',
        `proxy: ${budget.open} upstream connections open, the max_connections limit`,
      );
    }
    budget.open++;
    try {
      const connection = await this.connector.connect(options);
      connection.socket.once('close', () => budget.open--);
      return connection;
    } catch (err) {
      budget.open--;
      throw err;
    }
  }

  /** A fresh pool after our identity rotated: old keep-alive connections retire once their requests finish. */
  renewPool(): void {
    const old = this.pool;
    this.pool = this.makePool();
    old.close().catch(this.deps.onPoolCloseError);
    this.renewPipelining(this.pipeliningConfig);
  }

  /** Graceful: requests in flight finish; `destroy` for shutdown. */
  async close(destroy = false): Promise<void> {
    const pipelining = this.pipelining;
    this.pipelining = null;
    await Promise.all([
      destroy ? this.pool.destroy() : this.pool.close(),
      destroy ? pipelining?.destroy() : pipelining?.close(),
    ]);
  }

  /** New lanes for `config` (none when null); the old ones finish their requests and close. */
  private renewPipelining(config: PipeliningConfig | null): void {
    this.pipelining?.close().catch(this.deps.onPoolCloseError);
    this.pipeliningConfig = config;
    this.pipelining =
      config === null
        ? null
        : new Pipelining({
            origin: `http://${this.label}`,
            config,
            clock: this.deps.clock,
            keepAliveMs: UPSTREAM_KEEP_ALIVE_MS,
            connect: this.connectForUndici,
            fallback: () => this.pool,
            onStall: (moved) => this.deps.onPipelineStall(this, moved),
          });
  }

  private makePool(): Pool {
    return new Pool(`http://${this.label}`, {
      pipelining: 1,
      keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS,
      connect: this.connectForUndici,
    });
  }

  /** undici's connector: a verified connection under the service's budget. */
  private readonly connectForUndici = (
    _opts: unknown,
    callback: (err: Error | null, socket: never) => void,
  ) => {
    this.connect().then(
      ({ socket }) => callback(null, socket as never),
      (err: Error) => callback(err, null as never),
    );
  };
}

/** Identity of an endpoint across reloads: the same address with the same accepted IDs. */
export function endpointKey(config: EndpointConfig): string {
  return `${config.address.host}:${config.address.port} ${[...config.serverIds].sort().join(' ')}`;
}

/**
 * The live endpoints of a service. `update` adds new ones, keeps those that stay (and their state),
 * and closes the rest gracefully.
 */
export class EndpointSet {
  private byKey = new Map<string, Endpoint>();
  list: readonly Endpoint[] = [];

  constructor(private readonly deps: EndpointDeps) {}

  update(configs: readonly EndpointConfig[]): { added: Endpoint[]; removed: Endpoint[] } {
    const next = new Map<string, Endpoint>();
    const added: Endpoint[] = [];
    for (const config of configs) {
      const key = endpointKey(config);
      if (next.has(key)) continue;
      let endpoint = this.byKey.get(key);
      if (endpoint === undefined) {
        endpoint = new Endpoint(config, this.deps);
        added.push(endpoint);
      }
      next.set(key, endpoint);
    }
    const removed = [...this.byKey.values()].filter((endpoint) => !next.has(endpoint.key));
    for (const endpoint of removed) endpoint.close().catch(this.deps.onPoolCloseError);
    this.byKey = next;
    this.list = [...next.values()];
    return { added, removed };
  }

  renewPools(): void {
    for (const endpoint of this.list) endpoint.renewPool();
  }

  async close(): Promise<void> {
    await Promise.all(this.list.map((endpoint) => endpoint.close(true)));
    this.byKey.clear();
    this.list = [];
  }
}
