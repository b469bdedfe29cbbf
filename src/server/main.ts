// Composition root of sigil-server: wires config, datastore, authorized-entries index, CA, the agent
// API and the admin listeners, and owns their lifecycle. Everything here is built from the frozen
// ServerConfig; nothing reads argv/env.
import { EventEmitter } from 'node:events';
import { unlink } from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import type { DestinationStream, Logger } from 'pino';
import { Registry } from 'prom-client';
import { createNodeAttestorServer, type JoinTokenReader } from '../attestors/node/index.js';
import { JWT_PRUNE_GRACE_MS, rotationWarnings } from '../rotation/index.js';
import { bundleToPem } from '../spiffe/bundle.js';
import { type Clock, systemClock } from '../spiffe/clock.js';
import { lockDataDir } from '../spiffe/data-dir-lock.js';
import type { HostPort } from '../spiffe/host-port.js';
import { startMetricsListener } from '../spiffe/metrics-listener.js';
import { ensurePrivateDir } from '../spiffe/secret-file.js';
import { serverSpiffeId } from '../spiffe/sigil-ids.js';
import { prepareSocketDir, type SocketCheckOptions } from '../spiffe/socket-dir.js';
import { listenOnSocket, removeStaleSocket } from '../spiffe/socket-listen.js';
import { rethrowListenError } from '../spiffe/tcp-listen.js';
import { buildAdminApp } from './api/admin/app.js';
import type { AdminDeps } from './api/admin/deps.js';
import { BundleFeed } from './api/agent/bundle-feed.js';
import { startAgentApi } from './api/agent/listener.js';
import { AuthorizedEntries, observeEntryWrites } from './authorized-entries/index.js';
import { ServerCa } from './ca/server-ca.js';
import { loadUpstreamAuthority } from './ca/upstream.js';
import type { ServerConfig } from './config.js';
import { openDataStore } from './datastore/index.js';
import type { DataStore, RegistrationEntry } from './datastore/types.js';
import { ServerIdentity } from './identity.js';
import { createLogger } from './logger.js';
import { caMetricsObserver, createServerMetrics, renderServerMetrics } from './metrics.js';
import { type BundleNotifier, createNotifierMetrics, startNotifiers } from './notifiers/index.js';
import { observeServerWrites } from './write-hooks.js';

/** Expired entries and join tokens are swept this often. */
const PRUNE_INTERVAL_MS = 60_000;
/** Owner-only: on the Unix socket, file permissions are the admin API's authentication. */
const ADMIN_SOCKET_MODE = 0o600;

export interface StartOptions {
  readonly clock?: Clock;
  /** Where logs go; stdout by default. */
  readonly logDestination?: DestinationStream;
  /** This process's uid: the admin socket's directory must be ours. Defaults to process.getuid(). */
  readonly uid?: number;
  /** Jitter of retry delays, in [0, 1); Math.random by default. */
  readonly random?: () => number;
}

export interface RunningServer {
  readonly config: ServerConfig;
  readonly logger: Logger;
  /** The agent API's bound address. */
  readonly agentApiAddress: HostPort;
  /** The mTLS admin listener's bound address, when admin_bind is set. */
  readonly adminAddress: HostPort | null;
  /** Where GET /metrics is served in plain HTTP, when metrics_bind is set. */
  readonly metricsAddress: HostPort | null;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const clock = options.clock ?? systemClock;
  const logger = createLogger(config.logLevel, options.logDestination);
  const cleanups: Array<() => unknown> = [];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };
  try {
    // Whatever the config names is read and checked before the disk is touched: a bad attestor
    // setting or upstream CA used to surface after the store was created and CA keys written.
    const upstream = config.ca.upstream ? loadUpstreamAuthority(config.ca.upstream) : null;
    // Bound once the store is open; no agent can attest before the agent API listens, further down.
    let joinTokens: JoinTokenReader | undefined;
    const attestors = new Map(
      Object.entries(config.nodeAttestors).map(([name, raw]) => [
        name,
        createNodeAttestorServer(
          name,
          raw,
          { joinTokens: { fetchJoinToken: (token, nowMs) => joinTokens!.fetchJoinToken(token, nowMs) } },
          `node_attestors.${name}`,
        ),
      ]),
    );
    const socketCheck: SocketCheckOptions = {
      uid: options.uid ?? process.getuid!(),
      field: 'admin_socket',
      logger,
    };
    // A socket directory someone else could swap is refused before the data dir is even created.
    prepareSocketDir(config.adminSocket, 'private', socketCheck);
    // Claim the data dir before anything in it is opened or written, so a second server on it (with
    // its own admin socket or not) touches nothing; released last, after the store is closed.
    ensurePrivateDir(config.dataDir);
    const dataDirLock = lockDataDir(config.dataDir, { what: 'sigil-server' });
    cleanups.push(() => dataDirLock.release());
    // A socket something answers on is refused (another server); a stale one left by a crash is removed.
    await removeStaleSocket(config.adminSocket, socketCheck.field);
    const rawStore = await openDataStore(config.datastore, clock);
    cleanups.push(() => rawStore.close());
    const serverId = serverSpiffeId(config.trustDomain).toString();
    const index = await AuthorizedEntries.load(rawStore, serverId, {
      onReservedEntriesIgnored: (ignored) => warnIgnoredEntries(ignored, logger),
    });
    const agentEvents = new EventEmitter().setMaxListeners(0);
    // Bound late: the CA's first bundle write happens before the feed and identity exist.
    let bundles: BundleFeed | undefined;
    let identity: ServerIdentity | undefined;
    let notifiers: readonly BundleNotifier[] = [];
    const store = observeServerWrites(observeEntryWrites(rawStore, index), {
      bundleWritten: async (trustDomain) => {
        if (trustDomain !== config.trustDomain.name) return bundles?.reload();
        identity?.refreshTrust();
        bundles?.ownChanged();
        for (const notifier of notifiers) notifier.bundleChanged();
      },
      agentRemoved: (agentId) => agentEvents.emit('removed', agentId),
    });
    joinTokens = store;

    const ca = await ServerCa.open({
      trustDomain: config.trustDomain,
      keyType: config.ca.keyType,
      jwtKeyType: config.ca.jwtKeyType,
      caTtlMs: config.ca.ttlMs,
      defaultX509SvidTtlMs: config.defaultX509SvidTtlMs,
      defaultJwtSvidTtlMs: config.defaultJwtSvidTtlMs,
      upstream,
      keysDir: path.join(config.dataDir, 'keys'),
      store,
      clock,
      logger: logger.child({ component: 'ca' }),
      rotation: { minPublishLeadMs: config.ca.publishLeadMs },
      jwtRotation: { pruneGraceMs: JWT_PRUNE_GRACE_MS },
    });
    cleanups.push(() => ca.close());
    for (const warning of rotationWarnings({
      caTtlMs: config.ca.ttlMs,
      defaultX509SvidTtlMs: config.defaultX509SvidTtlMs,
      defaultJwtSvidTtlMs: config.defaultJwtSvidTtlMs,
      minPublishLeadMs: config.ca.publishLeadMs,
      agentSvidTtlMs: config.agentSvidTtlMs,
    })) {
      logger.warn(warning);
    }
    bundles = await BundleFeed.load(
      store,
      () => ca.bundle(),
      () => ca.taintedX509Authorities(),
    );
    const serverIdentity = new ServerIdentity(
      ca,
      config.defaultX509SvidTtlMs,
      clock,
      logger.child({ component: 'identity' }),
    );
    identity = serverIdentity;
    cleanups.push(() => serverIdentity.close());

    const registry = new Registry();
    const metrics = createServerMetrics(registry);
    // Kept current: each activation moves the expiry gauges, each scheduled check the health ones.
    ca.observe(caMetricsObserver(metrics));
    cleanups.push(schedulePruning(store, clock, logger));
    const started = startNotifiers(config.notifiers, {
      bundlePem: () => bundleToPem(ca.bundle()),
      clock,
      random: options.random ?? Math.random,
      logger: logger.child({ component: 'notifier' }),
      metrics: createNotifierMetrics(registry),
    });
    notifiers = started;
    cleanups.push(() => Promise.all(started.map((n) => n.close())));

    const agentApi = await startAgentApi(
      config.bind,
      serverIdentity.material,
      {
        ca,
        store,
        index,
        bundles,
        attestors,
        agentSvidTtlMs: config.agentSvidTtlMs,
        clock,
        logger,
        metrics,
        onAgentRemoved: (listener) => {
          agentEvents.on('removed', listener);
          return () => agentEvents.off('removed', listener);
        },
      },
      config.agentApi,
    ).catch(rethrowListenError({ setting: 'bind', flag: '--bind', ...config.bind }));
    cleanups.push(() => agentApi.close());

    const deps: AdminDeps = {
      store,
      ca,
      index,
      clock,
      minSvidTtlMs: config.minSvidTtlMs,
      logger,
      metrics,
      registry,
      // Not ready when rotation keeps failing: a CA that cannot rotate will expire (rotation-health.ts).
      isReady: async () => {
        await store.countEntries();
        return ca.isRotationReady();
      },
    };
    const local = await buildAdminApp(deps, { auth: 'local', limits: config.adminApi });
    // Bound by us rather than by local.listen(), so that the socket is owner-only from its first instant.
    await local.ready();
    await listenOnSocket(local.server, config.adminSocket, ADMIN_SOCKET_MODE);
    cleanups.push(async () => {
      await local.close();
      await unlink(config.adminSocket).catch(() => {
        // Already gone (removed by an operator or a restarted server): nothing left to clean.
      });
    });

    let adminAddress: HostPort | null = null;
    if (config.adminBind) {
      const remote = await buildAdminApp(deps, {
        auth: 'mtls',
        limits: config.adminApi,
        https: {
          ...serverIdentity.tlsOptions(),
          requestCert: true,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2',
        },
      });
      cleanups.push(() => remote.close());
      cleanups.push(
        serverIdentity.onRenewed(() =>
          (remote.server as unknown as TlsServer).setSecureContext(serverIdentity.tlsOptions()),
        ),
      );
      const adminBind = { setting: 'admin_bind', flag: '--admin-bind', ...config.adminBind };
      await remote
        .listen({ host: adminBind.host, port: adminBind.port })
        .catch(rethrowListenError(adminBind));
      const bound = remote.server.address() as net.AddressInfo;
      adminAddress = { host: bound.address, port: bound.port };
    }

    let metricsAddress: HostPort | null = null;
    if (config.metricsBind) {
      const listener = await startMetricsListener({
        listen: config.metricsBind,
        field: 'metrics_bind',
        flag: '--metrics-bind',
        render: () => renderServerMetrics(registry, metrics, () => store.countEntries()),
        onError: (err) => logger.error({ err }, 'Serving metrics failed'),
      });
      cleanups.push(() => listener.close());
      metricsAddress = listener.address;
    }

    logger.info(
      {
        trustDomain: config.trustDomain.name,
        agentApiAddress: agentApi.address,
        adminSocket: config.adminSocket,
        adminAddress,
        metricsAddress,
        dataDir: config.dataDir,
        datastore: config.datastore.kind,
        nodeAttestors: [...attestors.keys()],
      },
      'Sigil server started',
    );
    return { config, logger, agentApiAddress: agentApi.address, adminAddress, metricsAddress, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Entries stored with a reserved ID before such IDs were refused: named once, so an operator removes them. */
function warnIgnoredEntries(ignored: readonly RegistrationEntry[], logger: Logger): void {
  logger.warn(
    { entries: ignored.map((e) => ({ id: e.id, spiffeId: e.spiffeId, parentId: e.parentId })) },
    "Entries with SPIFFE IDs reserved for Sigil's server and agents are ignored: never served to agents nor minted; delete them",
  );
}

function schedulePruning(store: DataStore, clock: Clock, logger: Logger): () => void {
  let cancel = () => {};
  const sweep = async () => {
    try {
      const nowMs = clock.nowMs();
      const entries = await store.pruneEntries(nowMs);
      const tokens = await store.pruneJoinTokens(nowMs);
      if (entries + tokens > 0) logger.info({ entries, tokens }, 'Expired entries and join tokens pruned');
    } catch (err) {
      logger.error({ err }, 'Pruning expired records failed; retrying next interval');
    }
    cancel = clock.setTimer(PRUNE_INTERVAL_MS, () => void sweep());
  };
  cancel = clock.setTimer(PRUNE_INTERVAL_MS, () => void sweep());
  return () => cancel();
}
