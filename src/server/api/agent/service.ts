// The agent API service (sigil.agent.v1.AgentApi): validate → authenticate the agent → act → map
// errors in one place. Built apart from any listener so tests can bind it where they like.
import type {
  handleUnaryCall,
  ServerDuplexStream,
  ServerErrorResponse,
  ServerUnaryCall,
  ServerWritableStream,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type {
  AttestRequest,
  AttestResponse,
  FetchBundlesResponse,
  MintJwtSvidRequest,
  MintJwtSvidResponse,
  SvidRequest,
  SvidResult,
  SyncEntriesRequest,
  SyncEntriesResponse,
} from '../../../../proto/agent-api.js';
import { encodeSpiffeBundle, type TrustBundle } from '../../../spiffe/bundle.js';
import { SigilError } from '../../../spiffe/errors.js';
import { parseSpiffeId } from '../../../spiffe/id.js';
import { checkJwtAudience } from '../../../spiffe/jwt-svid.js';
import { describeCertificate, parseCsr } from '../../../spiffe/x509-svid.js';
import type { EntryDelta } from '../../authorized-entries/index.js';
import type { RegistrationEntry } from '../../datastore/types.js';
import { authenticateAgent } from './agent-auth.js';
import { attest } from './attest.js';
import type { AgentApiDeps } from './deps.js';
import { itemErrorText, toServiceError } from './grpc-status.js';
import { type AgentApiLimits, MAX_CSRS_PER_CALL } from './limits.js';
import { RateLimiter, type RateRefusal } from './rate-limit.js';
import { resetCall } from './reset-call.js';
import { callSourceIp } from './source-ip.js';
import { SyncSender } from './sync-sender.js';
import { entryToWire } from './wire-entry.js';

/** Entries per sync message: far below gRPC's 4 MiB default however large the entries are. */
export const SYNC_PAGE_SIZE = 500;
/**
 * Sync updates held per stream while its agent is not reading, on top of grpc-js's own buffer (16
 * messages). A live agent drains within milliseconds; past this many it is far behind, and one
 * fresh snapshot is cheaper for both sides than the backlog.
 */
export const MAX_PENDING_SYNC_MESSAGES = 64;

export function createAgentService(deps: AgentApiDeps, limits: AgentApiLimits): UntypedServiceImplementation {
  const { ca, store, index, bundles, clock, logger, metrics } = deps;
  const log = logger.child({ component: 'agent-api' });
  const signRate = new RateLimiter({
    ratePerSecond: limits.signRatePerSecond,
    burst: limits.signBurst,
    clock,
  });
  const attestRate = new RateLimiter({
    ratePerSecond: limits.attestRatePerSecond,
    burst: limits.attestBurst,
    clock,
  });
  /** Past a rate: counted, logged once per refusal episode (never with request content), refused. */
  const refuseOverRate = (
    reason: 'sign-rate' | 'attest-rate',
    { retryAfterS, firstOfEpisode }: RateRefusal,
    logged: { event: string; fields: Record<string, unknown> },
    message: string,
  ): never => {
    metrics.agentApiRefusals.inc({ reason });
    if (firstOfEpisode) log.warn({ ...logged.fields, retryAfterS }, logged.event);
    throw new SigilError('ERR_RESOURCE_EXHAUSTED', `${message}; retry in ${retryAfterS}s`, { reason });
  };
  /** Charges `cost` SVIDs to the agent; throws ERR_RESOURCE_EXHAUSTED (429-like) past its rate. */
  const chargeSigning = (agentId: string, cost: number, rpc: string) => {
    const refusal = signRate.take(agentId, cost);
    if (refusal === null) return;
    refuseOverRate(
      'sign-rate',
      refusal,
      { event: 'Agent signing rate limited', fields: { agentId, rpc } },
      `agent ${agentId} is signing too fast: at most ${limits.signRatePerSecond} SVIDs per second (burst ${limits.signBurst})`,
    );
  };
  /**
   * Charges one attestation to the caller's source address, before a byte of the request is read:
   * a refused attempt costs no attestor work and leaves its join token unspent.
   */
  const chargeAttestation = (sourceIp: string) => {
    const refusal = attestRate.take(sourceIp, 1);
    if (refusal === null) return;
    refuseOverRate(
      'attest-rate',
      refusal,
      { event: 'Agent attestation rate limited', fields: { sourceIp } },
      `too many attestations from ${sourceIp}: at most ${limits.attestRatePerSecond} per second (burst ${limits.attestBurst}, agent_api.attest_rate)`,
    );
  };

  const unary =
    <Req, Res>(
      name: string,
      handle: (call: ServerUnaryCall<Req, Res>) => Promise<Res>,
    ): handleUnaryCall<Req, Res> =>
    (call, callback) => {
      handle(call).then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err, log, { rpc: name }) as ServerErrorResponse),
      );
    };

  const agentAuth = {
    nodes: store,
    trustDomain: ca.trustDomain,
    x509AuthorityCertificates: () => ca.x509AuthorityCertificates(),
    nowMs: () => deps.clock.nowMs(),
  };
  const ownBundleMessage = () => ({
    bundle: Buffer.from(encodeSpiffeBundle(bundles.ownBundle())),
    taintedAuthorities: bundles.taintedAuthorities(),
  });
  const federatedNamesFor = (entries: readonly RegistrationEntry[]) =>
    new Set(entries.flatMap((e) => e.federatesWith));
  const encodeFederated = (map: Map<string, TrustBundle>) =>
    Object.fromEntries([...map].map(([name, bundle]) => [name, Buffer.from(encodeSpiffeBundle(bundle))]));

  return {
    Attest(call: ServerDuplexStream<AttestRequest, AttestResponse>) {
      const fail = (err: unknown) => call.emit('error', toServiceError(err, log, { rpc: 'Attest' }));
      try {
        chargeAttestation(callSourceIp(call));
      } catch (err) {
        fail(err);
        return;
      }
      attest(call, deps).catch(fail);
    },

    RenewAgentSvid: unary<{ csr: Buffer }, { svidChain: Buffer[] }>('RenewAgentSvid', async (call) => {
      const node = await authenticateAgent(call, agentAuth);
      chargeSigning(node.spiffeId, 1, 'RenewAgentSvid');
      const issued = ca.signAgentSvid({
        csr: parseCsr(call.request.csr),
        agentId: parseSpiffeId(node.spiffeId),
        ttlMs: deps.agentSvidTtlMs,
      });
      await store.upsertNode({
        ...node,
        certSerial: describeCertificate(issued.chain[0]!).serialHex,
        certNotAfterMs: issued.expiresAtMs,
        x509AuthorityId: issued.authorityId,
        updatedAtMs: clock.nowMs(),
      });
      metrics.svidsIssued.inc({ type: 'x509', caller: 'agent-renewal' });
      log.info(
        { agentId: node.spiffeId, expiresAt: new Date(issued.expiresAtMs).toISOString() },
        'Agent SVID renewed',
      );
      return { svidChain: [...issued.chain] };
    }),

    SyncEntries(call: ServerWritableStream<SyncEntriesRequest, SyncEntriesResponse>) {
      const cleanups: Array<() => void> = [];
      const finish = (err?: unknown) => {
        for (const cleanup of cleanups.splice(0)) cleanup();
        if (err !== undefined) call.emit('error', toServiceError(err, log, { rpc: 'SyncEntries' }));
      };
      call.on('cancelled', () => finish());
      call.on('close', () => finish());
      authenticateAgent(call, agentAuth).then((node) => {
        if (call.cancelled) return;
        const agentId = node.spiffeId;
        let federatedKey = '';
        const federatedUpdate = (entries: readonly RegistrationEntry[], force: boolean) => {
          const current = bundles.federatedFor(federatedNamesFor(entries));
          const key = [...current]
            .map(([n, b]) => `${n}:${b.sequence}`)
            .sort()
            .join(',');
          if (!force && key === federatedKey) return {};
          federatedKey = key;
          return { federatedBundles: encodeFederated(current), federatedBundlesSet: true };
        };
        /** The whole state in pages; the first carries the bundles, so it replaces everything the agent holds. */
        const snapshotPages = (entries: readonly RegistrationEntry[], revision: number) => {
          const pages = Math.max(1, Math.ceil(entries.length / SYNC_PAGE_SIZE));
          return Array.from({ length: pages }, (_, page) => {
            const slice = entries.slice(page * SYNC_PAGE_SIZE, (page + 1) * SYNC_PAGE_SIZE);
            return {
              snapshotBegin: page === 0,
              snapshotEnd: page === pages - 1,
              upserted: slice.map(entryToWire),
              revision,
              ...(page === 0 ? { ...ownBundleMessage(), ...federatedUpdate(entries, true) } : {}),
            } as SyncEntriesResponse;
          });
        };
        const sender = new SyncSender<SyncEntriesResponse>(call, {
          clock,
          maxPendingMessages: MAX_PENDING_SYNC_MESSAGES,
          drainTimeoutMs: limits.syncDrainTimeoutMs,
          snapshot: () => snapshotPages(index.entriesFor(agentId), index.revision),
          onBehind: () => {
            metrics.agentSyncBehind.inc({ outcome: 'snapshot' });
            log.warn(
              { agentId, heldUpdates: MAX_PENDING_SYNC_MESSAGES },
              'Agent sync stream fell behind; its queued updates are replaced by a snapshot',
            );
          },
          onStalled: () => {
            metrics.agentSyncBehind.inc({ outcome: 'closed' });
            log.warn(
              { agentId, drainTimeoutMs: limits.syncDrainTimeoutMs },
              'Agent sync stream closed: the agent read nothing while updates waited',
            );
            finish(
              new SigilError(
                'ERR_RESOURCE_EXHAUSTED',
                `sync stream: not read for ${limits.syncDrainTimeoutMs / 1000}s while updates waited (agent_api.sync_drain_timeout); reconnect`,
                { reason: 'sync-stalled' },
              ),
            );
            // Its status cannot overtake the queued messages of an agent that reads nothing: reset it.
            resetCall(call);
          },
          onPendingChange: (delta) => metrics.agentSyncPendingMessages.inc(delta),
        });
        cleanups.push(() => sender.close());
        const send = (message: Partial<SyncEntriesResponse>) => sender.send(message as SyncEntriesResponse);

        // Computing the first answer and subscribing happen in one tick: no write can slip between.
        const changes = index.changesSince(agentId, call.request.sinceRevision);
        cleanups.push(
          index.subscribe(agentId, (delta: EntryDelta) => {
            send({
              upserted: delta.upserted.map(entryToWire),
              deletedIds: delta.deletedIds,
              revision: delta.revision,
              ...federatedUpdate(index.entriesFor(agentId), false),
            });
          }),
          bundles.onChange(() => {
            send({
              revision: index.revision,
              ...ownBundleMessage(),
              ...federatedUpdate(index.entriesFor(agentId), true),
            });
          }),
          deps.onAgentRemoved((removed) => {
            if (removed === agentId)
              finish(new SigilError('ERR_PERMISSION_DENIED', `agent ${agentId} was evicted or banned`));
          }),
        );
        if (changes.kind === 'snapshot') {
          sender.send(...snapshotPages(changes.entries, changes.revision));
          log.info(
            { agentId, entries: changes.entries.length, revision: changes.revision },
            'Agent synced from a snapshot',
          );
        } else {
          send({
            upserted: changes.delta.upserted.map(entryToWire),
            deletedIds: changes.delta.deletedIds,
            revision: changes.delta.revision,
            ...ownBundleMessage(),
            ...federatedUpdate(index.entriesFor(agentId), true),
          });
          log.info(
            { agentId, since: call.request.sinceRevision, revision: changes.delta.revision },
            'Agent sync resumed',
          );
        }
      }, finish);
    },

    SignX509Svids: unary<{ requests: SvidRequest[] }, { results: SvidResult[] }>(
      'SignX509Svids',
      async (call) => {
        const node = await authenticateAgent(call, agentAuth);
        const requests = call.request.requests;
        if (requests.length > MAX_CSRS_PER_CALL) {
          throw new SigilError(
            'ERR_INPUT_INVALID',
            `requests: at most ${MAX_CSRS_PER_CALL} CSRs per SignX509Svids call (got ${requests.length})`,
            { field: 'requests', reason: 'too-many-csrs' },
          );
        }
        chargeSigning(node.spiffeId, Math.max(1, requests.length), 'SignX509Svids');
        const entries = new Map(index.entriesFor(node.spiffeId).map((e) => [e.id, e]));
        const results = requests.map((request): SvidResult => {
          const entry = entries.get(request.entryId);
          if (!entry) {
            return {
              entryId: request.entryId,
              svidChain: [],
              expiresAt: 0,
              error: `entry ${request.entryId} is not authorized for ${node.spiffeId}`,
            };
          }
          try {
            const stop = metrics.svidIssueSeconds.startTimer({ type: 'x509' });
            const issued = ca.signCsr({
              csr: request.csr,
              spiffeId: parseSpiffeId(entry.spiffeId),
              dnsNames: entry.dnsNames,
              ttlMs: entry.x509SvidTtlMs,
            });
            stop();
            metrics.svidsIssued.inc({ type: 'x509', caller: 'agent' });
            return {
              entryId: entry.id,
              svidChain: [...issued.chain],
              expiresAt: Math.floor(issued.expiresAtMs / 1000),
              error: '',
            };
          } catch (err) {
            return {
              entryId: entry.id,
              svidChain: [],
              expiresAt: 0,
              error: itemErrorText(err, log, {
                rpc: 'SignX509Svids',
                agentId: node.spiffeId,
                entryId: entry.id,
              }),
            };
          }
        });
        const refused = results.filter((r) => r.error !== '');
        if (refused.length > 0)
          log.warn({ agentId: node.spiffeId, refused: refused.map((r) => r.entryId) }, 'CSRs refused');
        return { results };
      },
    ),

    MintJwtSvid: unary<MintJwtSvidRequest, MintJwtSvidResponse>('MintJwtSvid', async (call) => {
      const node = await authenticateAgent(call, agentAuth);
      const { entryId, audience } = call.request;
      checkJwtAudience(audience);
      chargeSigning(node.spiffeId, 1, 'MintJwtSvid');
      const entry = index.entriesFor(node.spiffeId).find((e) => e.id === entryId);
      if (!entry)
        throw new SigilError(
          'ERR_PERMISSION_DENIED',
          `entry ${entryId} is not authorized for ${node.spiffeId}`,
        );
      const minted = ca.mintJwtSvid({
        spiffeId: parseSpiffeId(entry.spiffeId),
        audience,
        ttlMs: entry.jwtSvidTtlMs,
      });
      metrics.svidsIssued.inc({ type: 'jwt', caller: 'agent' });
      return { token: minted.token, expiresAt: Math.floor(minted.expiresAtMs / 1000) };
    }),

    FetchBundles: unary<Record<string, never>, FetchBundlesResponse>('FetchBundles', async (call) => {
      const node = await authenticateAgent(call, agentAuth);
      return {
        bundle: Buffer.from(encodeSpiffeBundle(bundles.ownBundle())),
        federatedBundles: encodeFederated(
          bundles.federatedFor(federatedNamesFor(index.entriesFor(node.spiffeId))),
        ),
      };
    }),
  };
}
