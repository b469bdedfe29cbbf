// Composition root of sigil-agent: attests the node (or reuses its saved SVID), follows the server's
// entry stream, keeps its own SVID renewed, and serves the Workload API and its admin socket. While
// the server is unreachable it keeps serving what it has and reconnects with backoff.

import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { createNodeAttestorAgent } from '../attestors/node/index.js';
import type { NodeAttestorAgent } from '../attestors/node/types.js';
import { createWorkloadAttestor } from '../attestors/workload/index.js';
import type { PeerCred } from '../attestors/workload/types.js';
import { bundleFromPem, bundleToPem, parseSpiffeBundle, type TrustBundle } from '../spiffe/bundle.js';
import { type Clock, systemClock } from '../spiffe/clock.js';
import { SigilError } from '../spiffe/errors.js';
import { encodePem } from '../spiffe/pem.js';
import type { Selector } from '../spiffe/selector.js';
import { prepareSocketDir } from '../spiffe/socket-dir.js';
import { describeCertificate } from '../spiffe/x509-svid.js';
import { startAgentAdmin } from './admin.js';
import {
  type AgentState,
  loadAgentState,
  loadSavedBundle,
  saveAgentState,
  saveBundle,
} from './agent-state.js';
import type { AgentConfig } from './config.js';
import { createSvidKeyRequest } from './manager/csr.js';
import { AgentManager } from './manager/index.js';
import { attestNode } from './server-client/attest.js';
import { ServerConnection } from './server-client/connection.js';
import { runSyncLoop } from './server-client/sync.js';
import { startWorkloadApiServer } from './workloadapi/server.js';

/** Agent SVIDs are renewed once this fraction of their lifetime has passed. */
const AGENT_RENEW_FRACTION = 0.5;
/** Retry a failed renewal this soon (the SVID is still valid for a while). */
const RENEW_RETRY_MS = 5_000;

export interface RunningAgent {
  readonly spiffeId: string;
  close(): Promise<void>;
}

export interface AgentOptions {
  readonly clock?: Clock;
  readonly logger: Logger;
  /** This process's uid: the sockets' directories must be ours. */
  readonly uid: number;
}

export async function startAgent(config: AgentConfig, options: AgentOptions): Promise<RunningAgent> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const random = () => randomInt(0, 2 ** 32) / 2 ** 32;
  const cleanups: Array<() => unknown> = [];
  const abort = new AbortController();
  const close = async () => {
    // Stop the loops first; the cleanups below then await their ends.
    abort.abort();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };

  try {
    // Socket directories first: one that another user controls stops the agent before attestation
    // spends a join token. The listeners bind in them once the agent has its identity.
    prepareSocketDir(config.socketPath, 'public', { uid: options.uid, field: 'socket_path', logger });
    prepareSocketDir(config.adminSocket, 'private', { uid: options.uid, field: 'admin_socket', logger });
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

    // Trust: a bundle saved by an earlier run wins over the configured bootstrap bundle.
    const startBundle =
      (await loadSavedBundle(config.dataDir, config.trustDomain)) ?? (await readTrustBundle(config));
    if (startBundle) connection.setBundlePem(bundleToPem(startBundle));
    else
      logger.warn(
        'No trust bundle: trusting the server on first contact (--insecure-bootstrap). Do not use in production.',
      );

    let trusted = startBundle !== null;
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
    /** When the last attestation answered; unknown for a saved SVID reused from an earlier run. */
    let attestedAtMs = Number.NEGATIVE_INFINITY;
    const attestAgain = async (reason: string): Promise<AgentState> => {
      if (!attestor) {
        throw new SigilError(
          'ERR_CONFIG_INVALID',
          `the agent must attest (${reason}) but no node attestor is configured; pass --join-token or set node_attestor`,
        );
      }
      const attested = await attestNode(connection, attestor, config.trustDomain, !trusted);
      attestedAtMs = clock.nowMs();
      trusted = true;
      await saveAgentState(config.dataDir, attested);
      logger.info(
        { agentId: attested.spiffeId, reason, expiresAt: new Date(attested.expiresAtMs).toISOString() },
        'Node attested',
      );
      return attested;
    };
    if (state)
      logger.info({ agentId: state.spiffeId }, 'Reusing the saved agent SVID (no attestation needed)');
    else state = await attestAgain('no saved SVID');
    let current: AgentState = state;
    const useState = (next: AgentState) => {
      current = next;
      connection.setBundlePem(bundleToPem(next.bundle));
      connection.setIdentity(
        next.chain.map((c) => encodePem('CERTIFICATE', c)).join(''),
        next.key.export({ format: 'pem', type: 'pkcs8' }) as string,
      );
    };
    useState(current);

    const manager = new AgentManager({
      trustDomain: config.trustDomain,
      clock,
      random,
      logger: logger.child({ component: 'manager' }),
      initialBundle: current.bundle,
      maxSvids: config.svidCacheMax,
      jwtSvidCache: { maxTokens: config.jwtSvidCacheMax, maxBytes: config.jwtSvidCacheMaxBytes },
      signer: {
        signX509Svids: async (requests) => {
          const { results } = await connection.signX509Svids(requests);
          return results.map((r) =>
            r.error
              ? { entryId: r.entryId, error: r.error }
              : { entryId: r.entryId, chain: r.svidChain, expiresAtMs: r.expiresAt * 1000 },
          );
        },
        mintJwtSvid: async (entryId, audience) => {
          const minted = await connection.mintJwtSvid(entryId, audience);
          return { token: minted.token, expiresAtMs: minted.expiresAt * 1000 };
        },
      },
    });
    const managerDone = manager.run(abort.signal);
    cleanups.push(() => managerDone);

    let serverConnected = false;
    const syncDone = runSyncLoop({
      connection,
      manager,
      clock,
      random,
      logger: logger.child({ component: 'sync' }),
      trustDomain: config.trustDomain,
      reconcileIntervalMs: config.reconcileIntervalMs,
      signal: abort.signal,
      onConnected: (connected) => {
        serverConnected = connected;
      },
      onBundle: (bundle: TrustBundle) => {
        current = { ...current, bundle };
        connection.setBundlePem(bundleToPem(bundle));
        void saveBundle(config.dataDir, bundle).catch((err) =>
          logger.error({ err }, 'Saving the trust bundle failed'),
        );
      },
      onEvicted: async () => {
        if (!current.canReattest || !attestor) {
          logger.error(
            { agentId: current.spiffeId },
            'The server refused this agent (evicted or banned) and its attestor cannot attest again; serving cached SVIDs until they expire. Re-run the agent with new attestation evidence (e.g. a new --join-token).',
          );
          return false;
        }
        useState(await attestAgain('evicted'));
        connection.close();
        return true;
      },
    });
    cleanups.push(() => syncDone);

    cleanups.push(scheduleRenewal());
    function scheduleRenewal(): () => void {
      let cancel = () => {};
      // Servers backdate notBefore for clock skew (sigil-server by 10 s). Counted from notBefore, the
      // renewal point of an SVID shorter than twice the backdate lies in the past, so every renewal
      // was due at once: a tight loop against the server. Count from when we got the SVID instead;
      // a saved SVID from an earlier run (received time unknown) goes by notBefore.
      const arm = (receivedAtMs: number) => {
        const { notBeforeMs, notAfterMs } = describeCertificate(current.chain[0]!);
        const startMs = Math.max(notBeforeMs, Math.min(receivedAtMs, notAfterMs));
        const dueMs = startMs + (notAfterMs - startMs) * AGENT_RENEW_FRACTION;
        cancel = clock.setTimer(Math.max(0, dueMs - clock.nowMs()), () => void renew());
      };
      const renew = async () => {
        try {
          const request = createSvidKeyRequest();
          const { svidChain } = await connection.renewAgentSvid(request.csr);
          const receivedAtMs = clock.nowMs();
          const described = describeCertificate(svidChain[0]!);
          const next: AgentState = {
            ...current,
            chain: svidChain,
            key: request.key,
            expiresAtMs: described.notAfterMs,
          };
          await saveAgentState(config.dataDir, next);
          useState(next);
          // The open HTTP/2 connection still presents the old SVID, which the server no longer accepts.
          connection.close();
          logger.info(
            { agentId: next.spiffeId, expiresAt: new Date(next.expiresAtMs).toISOString() },
            'Agent SVID renewed',
          );
          arm(receivedAtMs);
        } catch (err) {
          logger.warn({ err: (err as Error).message }, 'Agent SVID renewal failed; retrying');
          if (current.expiresAtMs <= clock.nowMs() && current.canReattest && attestor) {
            useState(await attestAgain('SVID expired').catch(() => current));
          }
          cancel = clock.setTimer(RENEW_RETRY_MS, () => void renew());
        }
      };
      arm(attestedAtMs);
      return () => cancel();
    }

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
    });
    cleanups.push(() => workloadApi.close());

    const admin = await startAgentAdmin({
      socketPath: config.adminSocket,
      manager,
      attestor: callerAttestor,
      status: () => ({
        agentId: current.spiffeId,
        svidExpiresAtMs: current.expiresAtMs,
        serverConnected,
        revision: manager.revision,
      }),
      logger,
    });
    cleanups.push(() => admin.close());

    logger.info(
      {
        agentId: current.spiffeId,
        socketPath: config.socketPath,
        adminSocket: config.adminSocket,
        servers: config.serverAddresses,
      },
      'Sigil agent started',
    );
    return { spiffeId: current.spiffeId, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function readTrustBundle(config: AgentConfig): Promise<TrustBundle | null> {
  if (!config.trustBundlePath) {
    if (config.insecureBootstrap) return null;
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      'no trust bundle: pass --trust-bundle-path (sigil-server bundle show > bundle.pem) or --insecure-bootstrap for demos',
    );
  }
  let text: string;
  try {
    text = await readFile(config.trustBundlePath, 'utf8');
  } catch (err) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `trust_bundle_path: cannot read ${config.trustBundlePath}: ${(err as Error).message}`,
    );
  }
  return text.trimStart().startsWith('{')
    ? parseSpiffeBundle(text, config.trustDomain)
    : bundleFromPem(config.trustDomain, text);
}
