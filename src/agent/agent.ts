// Composition root of sigil-agent: attests the node (or reuses its saved SVID), follows the server's
// entry stream, keeps its own SVID renewed (identity/), and serves the Workload API and its admin
// socket. While the server is unreachable it keeps serving what it has and reconnects with backoff.

import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { createNodeAttestorAgent } from '../attestors/node/index.js';
import type { NodeAttestorAgent } from '../attestors/node/types.js';
import { createWorkloadAttestor } from '../attestors/workload/index.js';
import type { PeerCred } from '../attestors/workload/types.js';
import { bundleToPem, type TrustBundle } from '../spiffe/bundle.js';
import { type Clock, systemClock } from '../spiffe/clock.js';
import { lockDataDir } from '../spiffe/data-dir-lock.js';
import { SigilError } from '../spiffe/errors.js';
import type { HostPort } from '../spiffe/host-port.js';
import { startMetricsListener } from '../spiffe/metrics-listener.js';
import { ensurePrivateDir } from '../spiffe/secret-file.js';
import type { Selector } from '../spiffe/selector.js';
import { prepareSocketDir } from '../spiffe/socket-dir.js';
import { claimSocketPath } from '../spiffe/socket-listen.js';
import { startAgentAdmin } from './admin.js';
import {
  joinTokenSha256,
  loadAgentState,
  saveAgentState,
  saveBundle,
  savedBundlePath,
} from './agent-state.js';
import type { AgentConfig } from './config.js';
import {
  AgentIdentity,
  type AttestationEvidence,
  assessAgentHealth,
  attestUntilAccepted,
  classifyServerFailure,
  describeServerFailure,
  loadStartBundle,
  staleBundleMessage,
} from './identity/index.js';
import { AgentManager, createSvidStore } from './manager/index.js';
import { type AgentMetrics, createAgentMetrics } from './metrics.js';
import { attestNode } from './server-client/attest.js';
import { ServerConnection } from './server-client/connection.js';
import { serverSigner } from './server-client/signer.js';
import { runSyncLoop } from './server-client/sync.js';
import { startWorkloadApiServer } from './workloadapi/server.js';

export interface RunningAgent {
  readonly spiffeId: string;
  /** Where GET /metrics is served, when metrics_bind is set. */
  readonly metricsAddress: HostPort | null;
  close(): Promise<void>;
}

export interface AgentOptions {
  readonly clock?: Clock;
  readonly logger: Logger;
  /** This process's uid: the sockets' directories must be ours. */
  readonly uid: number;
  /**
   * The registry served on metrics_bind and the metrics on it; the CLI makes them before the logger,
   * which counts error lines into them. A fresh pair by default.
   */
  readonly telemetry?: { readonly registry: Registry; readonly metrics: AgentMetrics };
}

export async function startAgent(config: AgentConfig, options: AgentOptions): Promise<RunningAgent> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const random = () => randomInt(0, 2 ** 32) / 2 ** 32;
  const registry = options.telemetry?.registry ?? new Registry();
  const metrics = options.telemetry?.metrics ?? createAgentMetrics(registry, clock);
  const cleanups: Array<() => unknown> = [];
  const abort = new AbortController();
  const close = async () => {
    // Stop the loops first; the cleanups below then await their ends.
    abort.abort();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };

  try {
    // The data dir first, claimed before anything else is touched: a second agent on it (whatever
    // its sockets) would renew, rewrite and persist the same identity and cache as the first. The
    // claim is released last, after the SVID store's final write.
    prepareDataDir(config.dataDir);
    const dataDirLock = lockDataDir(config.dataDir, { what: 'sigil-agent' });
    cleanups.push(() => dataDirLock.release());
    // Then the sockets: a directory another user controls, a socket a running agent serves, or a
    // path we cannot bind stops the agent before attestation spends a join token. The listeners
    // bind for good once the agent has its identity.
    prepareSocketDir(config.socketPath, 'public', { uid: options.uid, field: 'socket_path', logger });
    prepareSocketDir(config.adminSocket, 'private', { uid: options.uid, field: 'admin_socket', logger });
    await claimSocketPath(config.socketPath, 'socket_path');
    await claimSocketPath(config.adminSocket, 'admin_socket');
    const connection = new ServerConnection({
      addresses: config.serverAddresses,
      trustDomain: config.trustDomain,
      insecureBootstrap: config.insecureBootstrap,
      nowMs: () => clock.nowMs(),
      logger: logger.child({ component: 'server-client' }),
    });
    cleanups.push(() => connection.close());
    const attestor: NodeAttestorAgent | null =
      config.nodeAttestor.name === 'none'
        ? null
        : createNodeAttestorAgent(
            config.nodeAttestor.name,
            config.nodeAttestor.config,
            `node_attestor.${config.nodeAttestor.name}`,
          );

    // Trust: the bundle saved by an earlier run united with the configured one (a stale saved bundle
    // is healed by passing the current one), or nothing with insecure bootstrap.
    const startBundle = await loadStartBundle(config);
    if (startBundle) connection.setBundlePem(bundleToPem(startBundle));
    else
      logger.warn(
        'No trust bundle: trusting the server on first contact (--insecure-bootstrap). Do not use in production.',
      );
    /** Sequence of the bundle we trust the server with, for the stale-bundle advice. */
    let bundleSequence = startBundle?.sequence ?? 0;
    const bundleAdvice = () =>
      staleBundleMessage({ savedPath: savedBundlePath(config.dataDir), sequence: bundleSequence });

    let trusted = startBundle !== null;
    const tokenSha256 =
      config.nodeAttestor.name === 'join_token'
        ? joinTokenSha256(String((config.nodeAttestor.config as { token?: unknown }).token))
        : null;
    const evidence: AttestationEvidence | null = attestor && {
      joinTokenSha256: tokenSha256,
      attest: async () => {
        try {
          const attested = await attestNode(connection, attestor, config.trustDomain, !trusted);
          trusted = true;
          metrics.attested('success');
          return attested;
        } catch (err) {
          metrics.attested(classifyServerFailure(err));
          throw err;
        }
      },
    };
    let state = await loadAgentState(config.dataDir, config.trustDomain);
    if (state && state.expiresAtMs <= clock.nowMs()) {
      if (!state.canReattest) {
        logger.error(
          { agentId: state.spiffeId },
          'Agent SVID expired and its attestor cannot attest again; attesting with the configured evidence',
        );
      }
      state = null;
    }
    /** When the SVID in use was received; unknown (-Infinity) for one saved by an earlier run. */
    let receivedAtMs = Number.NEGATIVE_INFINITY;
    if (state) {
      logger.info({ agentId: state.spiffeId }, 'Reusing the saved agent SVID (no attestation needed)');
      if (tokenSha256 && tokenSha256 !== state.joinTokenSha256) {
        logger.info(
          { agentId: state.spiffeId },
          'A new join token was given; it stays unused while the server accepts the saved agent SVID, and is used if the server refuses it',
        );
      }
      // The saved state's bundle may be older than the start bundle, which includes it.
      if (startBundle) state = { ...state, bundle: startBundle };
    } else {
      if (!evidence) {
        throw new SigilError(
          'ERR_CONFIG_INVALID',
          'the agent must attest (no saved SVID) but no node attestor is configured; pass --join-token or set node_attestor',
        );
      }
      const attested = await attestUntilAccepted(evidence.attest, {
        clock,
        random,
        logger,
        signal: abort.signal,
        staleBundleAdvice: bundleAdvice,
      });
      receivedAtMs = clock.nowMs();
      state = { ...attested, joinTokenSha256: tokenSha256 };
      await saveAgentState(config.dataDir, state);
      logger.info(
        {
          agentId: state.spiffeId,
          reason: 'no saved SVID',
          expiresAt: new Date(state.expiresAtMs).toISOString(),
        },
        'Node attested',
      );
    }
    const identity = new AgentIdentity({
      initial: state,
      receivedAtMs,
      connection,
      evidence,
      save: (next) => saveAgentState(config.dataDir, next),
      clock,
      random,
      logger: logger.child({ component: 'identity' }),
    });
    cleanups.push(() => identity.close());

    // Entries and workload SVIDs kept by the last run (svid_store: disk): loaded before the sync
    // loop reaches for the server, so a restart during an outage keeps serving every workload.
    const svidStore = createSvidStore(config.svidStore, {
      dataDir: config.dataDir,
      clock,
      logger: logger.child({ component: 'svid-store' }),
      trustDomain: config.trustDomain,
      maxSvids: config.svidCacheMax,
      snapshot: () => manager.exportCache(identity.state.spiffeId),
    });
    const manager = new AgentManager({
      trustDomain: config.trustDomain,
      onCacheChanged: () => svidStore.markDirty(),
      onExpiredDropped: (count) => metrics.expiredDropped(count),
      clock,
      random,
      logger: logger.child({ component: 'manager' }),
      initialBundle: identity.state.bundle,
      maxSvids: config.svidCacheMax,
      jwtSvidCache: { maxTokens: config.jwtSvidCacheMax, maxBytes: config.jwtSvidCacheMaxBytes },
      signer: serverSigner(connection, metrics),
    });
    const kept = await svidStore.load(identity.state.spiffeId);
    if (kept) manager.restoreCache(kept);
    metrics.sampleCache(() => manager.unexpiredSvidCount());
    const managerDone = manager.run(abort.signal);
    cleanups.push(() => managerDone);
    // Runs before managerDone is awaited (cleanups run in reverse): the last changes are written.
    cleanups.push(() => svidStore.close());

    const server = { connected: false, synced: false, problem: null as string | null };
    const syncDone = runSyncLoop({
      connection,
      // The agent's own SVID follows taints as the workload SVIDs do.
      manager: {
        applySync: (update) => {
          manager.applySync(update);
          metrics.syncApplied(update.revision);
          if (update.taintedAuthorities && update.bundle) {
            identity.noteTainted(update.taintedAuthorities, update.bundle.x509Authorities);
          }
        },
      },
      clock,
      random,
      logger: logger.child({ component: 'sync' }),
      trustDomain: config.trustDomain,
      reconcileIntervalMs: config.reconcileIntervalMs,
      signal: abort.signal,
      onConnected: (connected) => {
        metrics.syncConnected(connected);
        server.connected = connected;
        if (connected) {
          server.synced = true;
          server.problem = null;
        }
      },
      onFailure: (err) => {
        metrics.syncFailed();
        const stale = classifyServerFailure(err) === 'stale-bundle';
        const problem = stale ? bundleAdvice() : describeServerFailure(err);
        // The advice once per outage, not at every retry (the retry line says it is still failing).
        if (stale && server.problem !== problem) logger.error({ server: connection.address }, problem);
        server.problem = problem;
      },
      isRefusal: (err) => classifyServerFailure(err) === 'refused',
      onBundle: (bundle: TrustBundle) => {
        bundleSequence = bundle.sequence;
        identity.setBundle(bundle);
        connection.setBundlePem(bundleToPem(bundle));
        void saveBundle(config.dataDir, bundle).catch((err) =>
          logger.error({ err }, 'Saving the trust bundle failed'),
        );
      },
      onEvicted: () => identity.onRefused('the server refused the agent SVID on the sync stream'),
    });
    cleanups.push(() => syncDone);

    const workloadAttestors = Object.entries(config.workloadAttestors).map(([name, raw]) =>
      createWorkloadAttestor(name, raw, { clock }),
    );
    const callerAttestor = {
      attest: async (peer: PeerCred, signal: AbortSignal): Promise<Selector[]> =>
        (await Promise.all(workloadAttestors.map((a) => a.attest(peer, signal)))).flat(),
    };
    const workloadApi = await startWorkloadApiServer({
      socketPath: config.socketPath,
      feed: manager,
      attestor: callerAttestor,
      logger: logger.child({ component: 'workload-api' }),
      clock,
      limits: config.workloadApi,
      observer: metrics.workloadApi,
    });
    cleanups.push(() => workloadApi.close());

    const admin = await startAgentAdmin({
      socketPath: config.adminSocket,
      manager,
      attestor: callerAttestor,
      status: () => {
        const own = identity.health();
        const entries = manager.entryCount;
        const svids = manager.unexpiredSvidCount();
        return {
          agentId: identity.state.spiffeId,
          svidExpiresAtMs: own.notAfterMs,
          serverConnected: server.connected,
          revision: manager.revision,
          entries,
          svids,
          health: assessAgentHealth({
            nowMs: clock.nowMs(),
            svid: own,
            lastRenewalError: own.lastRenewalError,
            refusedReason: own.refusedReason,
            serverConnected: server.connected,
            serverProblem: server.problem,
            synced: server.synced,
            entries,
            unexpiredSvids: svids,
          }),
        };
      },
      logger,
    });
    cleanups.push(() => admin.close());

    let metricsAddress: HostPort | null = null;
    if (config.metricsBind) {
      const listener = await startMetricsListener({
        listen: config.metricsBind,
        field: 'metrics_bind',
        flag: '--metrics-bind',
        render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
        onError: (err) => logger.error({ err }, 'Serving metrics failed'),
      });
      cleanups.push(() => listener.close());
      metricsAddress = listener.address;
    }

    logger.info(
      {
        agentId: identity.state.spiffeId,
        socketPath: config.socketPath,
        adminSocket: config.adminSocket,
        servers: config.serverAddresses,
        metricsAddress,
      },
      'Sigil agent started',
    );
    return { spiffeId: identity.state.spiffeId, metricsAddress, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** ensurePrivateDir, with a failure to create the directory as one config error naming it. */
function prepareDataDir(dir: string): void {
  try {
    ensurePrivateDir(dir);
  } catch (err) {
    if (err instanceof SigilError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `data_dir: cannot create ${dir}: ${code}; give this user write access to its parent, or choose another directory with data_dir`,
      { field: 'data_dir', reason: 'data-dir', cause: err },
    );
  }
}
