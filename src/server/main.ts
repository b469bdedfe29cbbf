// Composition root of sigil-server: wires config, datastore, CA and the admin listeners, and owns
// their lifecycle. Everything here is built from the frozen ServerConfig; nothing reads argv/env.
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import { Registry } from 'prom-client';
import { type Clock, systemClock } from '../spiffe/clock.js';
import { SigilError } from '../spiffe/errors.js';
import { spiffeIdFromPath } from '../spiffe/id.js';
import { generateKey } from '../spiffe/keys.js';
import { encodePem } from '../spiffe/pem.js';
import { ensurePrivateDir } from '../spiffe/secret-file.js';
import { buildAdminApp } from './api/admin/app.js';
import { type AdminDeps, SERVER_ID_PATH } from './api/admin/deps.js';
import { ServerCa } from './ca/server-ca.js';
import { loadUpstreamAuthority } from './ca/upstream.js';
import type { ServerConfig } from './config.js';
import { openDataStore } from './datastore/index.js';
import type { DataStore } from './datastore/types.js';
import { createLogger } from './logger.js';
import { createServerMetrics } from './metrics.js';

/** Expired entries and join tokens are swept this often. */
const PRUNE_INTERVAL_MS = 60_000;

export interface StartOptions {
  readonly clock?: Clock;
  /** Where logs go; stdout by default. */
  readonly logDestination?: DestinationStream;
}

export interface RunningServer {
  readonly config: ServerConfig;
  readonly logger: Logger;
  /** The mTLS admin listener's bound address, when admin_bind is set. */
  readonly adminAddress: { host: string; port: number } | null;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const clock = options.clock ?? systemClock;
  const logger = createLogger(config.logLevel, options.logDestination);
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    ensurePrivateDir(config.dataDir);
    const store = await openDataStore(config.datastore, clock);
    cleanups.push(() => store.close());
    const ca = await ServerCa.open({
      trustDomain: config.trustDomain,
      keyType: config.ca.keyType,
      jwtKeyType: config.ca.jwtKeyType,
      caTtlMs: config.ca.ttlMs,
      defaultX509SvidTtlMs: config.defaultX509SvidTtlMs,
      defaultJwtSvidTtlMs: config.defaultJwtSvidTtlMs,
      upstream: config.ca.upstream ? loadUpstreamAuthority(config.ca.upstream) : null,
      keysDir: path.join(config.dataDir, 'keys'),
      store,
      clock,
      logger: logger.child({ component: 'ca' }),
    });
    const registry = new Registry();
    const metrics = createServerMetrics(registry);
    metrics.caExpiresAtSeconds.set({ type: 'x509' }, Math.floor(ca.x509Authority.notAfterMs / 1000));
    metrics.caExpiresAtSeconds.set({ type: 'jwt' }, Math.floor(ca.jwtAuthority.notAfterMs / 1000));
    const deps: AdminDeps = {
      store,
      ca,
      clock,
      logger,
      metrics,
      registry,
      isReady: async () => {
        await store.countEntries();
        return true;
      },
    };

    cleanups.push(schedulePruning(store, clock, logger));

    const local = await buildAdminApp(deps, { auth: 'local' });
    await listenOnSocket(local, config.adminSocket);
    cleanups.push(async () => {
      await local.close();
      removeStaleSocket(config.adminSocket);
    });

    let adminAddress: RunningServer['adminAddress'] = null;
    if (config.adminBind) {
      const identity = mintServerIdentity(ca, config);
      const remote = await buildAdminApp(deps, {
        auth: 'mtls',
        https: { ...identity.tls(), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
      });
      cleanups.push(() => remote.close());
      // Re-mint the server's own SVID at half its life and swap it into the listener in place.
      const renew = () => {
        const next = mintServerIdentity(ca, config);
        (remote.server as unknown as import('node:tls').Server).setSecureContext(next.tls());
        logger.info({ expiresAt: new Date(next.expiresAtMs).toISOString() }, 'Admin listener SVID renewed');
        cancel = clock.setTimer((next.expiresAtMs - clock.nowMs()) / 2, renew);
      };
      let cancel = clock.setTimer((identity.expiresAtMs - clock.nowMs()) / 2, renew);
      cleanups.push(() => cancel());
      await remote.listen({ host: config.adminBind.host, port: config.adminBind.port });
      const bound = remote.server.address() as net.AddressInfo;
      adminAddress = { host: bound.address, port: bound.port };
    }

    logger.info(
      {
        trustDomain: config.trustDomain.name,
        adminSocket: config.adminSocket,
        adminAddress,
        dataDir: config.dataDir,
        datastore: config.datastore.kind,
      },
      'Sigil server started',
    );
    return { config, logger, adminAddress, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function mintServerIdentity(ca: ServerCa, config: ServerConfig) {
  const key = generateKey('ec-p256');
  const issued = ca.signX509Svid({
    spiffeId: spiffeIdFromPath(config.trustDomain, SERVER_ID_PATH),
    publicKey: key,
    ttlMs: config.defaultX509SvidTtlMs,
  });
  return {
    expiresAtMs: issued.expiresAtMs,
    tls: () => ({
      key: key.export({ format: 'pem', type: 'pkcs8' }) as string,
      cert: issued.chain.map((der) => encodePem('CERTIFICATE', der)).join(''),
    }),
  };
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

async function listenOnSocket(app: FastifyInstance, socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  // Only a directory we create is made owner-only: tightening an existing one (say /tmp) would break others.
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(socketPath)) {
    if (await socketAnswers(socketPath)) {
      throw new SigilError(
        'ERR_UNAVAILABLE',
        `admin socket ${socketPath} is in use by another running server; stop it or pass --admin-socket`,
      );
    }
    removeStaleSocket(socketPath);
  }
  await app.listen({ path: socketPath });
  chmodSync(socketPath, 0o600);
}

function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

function removeStaleSocket(socketPath: string): void {
  try {
    unlinkSync(socketPath);
  } catch {
    // Already gone: nothing to clean.
  }
}
