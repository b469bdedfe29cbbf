// The Attest stream: params → (challenge ⇄ response)* → result. Everything is checked before
// anything is written: the CSR, the evidence, the aliases, the ban; then the agent SVID is signed, and
// only then are the join token spent, the node recorded and the alias entries created, in one
// datastore transaction. A refused attestation leaves nothing behind: the token stays usable.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { AttestRequest, AttestResponse } from '../../../../proto/agent-api.js';
import {
  type NodeAttestation,
  type NodeAttestorServer,
  refuseUnknownJoinToken,
} from '../../../attestors/node/index.js';
import { encodeSpiffeBundle } from '../../../spiffe/bundle.js';
import { isSigilError, quote, SigilError } from '../../../spiffe/errors.js';
import { parseSpiffeId, type SpiffeId, spiffeIdFromPath, type TrustDomain } from '../../../spiffe/id.js';
import { makeSelector } from '../../../spiffe/selector.js';
import { isReservedSpiffeId, serverSpiffeId } from '../../../spiffe/sigil-ids.js';
import { describeCertificate, parseCsr } from '../../../spiffe/x509-svid.js';
import type { AttestedNode, NewEntry } from '../../datastore/types.js';
import type { AgentApiDeps } from './deps.js';

/** A whole attestation, challenges included, must finish in this time. */
const ATTESTATION_TIMEOUT_MS = 30_000;

type AttestCall = ServerDuplexStream<AttestRequest, AttestResponse>;

export async function attest(call: AttestCall, deps: AgentApiDeps): Promise<{ agentId: string }> {
  const { ca, clock, attestors, metrics, logger } = deps;
  const inbox = messageQueue(call);
  const abort = new AbortController();
  const cancelTimer = clock.setTimer(ATTESTATION_TIMEOUT_MS, () =>
    abort.abort(
      new SigilError(
        'ERR_PERMISSION_DENIED',
        `attestation did not finish within ${ATTESTATION_TIMEOUT_MS / 1000}s`,
      ),
    ),
  );
  try {
    const first = await inbox.next(abort.signal);
    if (!('params' in first) || !first.params) {
      throw new SigilError('ERR_INPUT_INVALID', 'the first Attest message must carry params');
    }
    const { attestor: name, payload } = first.params;
    const attestor: NodeAttestorServer | undefined = attestors.get(name);
    if (!attestor) {
      throw new SigilError(
        'ERR_PERMISSION_DENIED',
        `node attestor ${quote(name)} is not enabled on this server (enabled: ${[...attestors.keys()].join(', ') || 'none'})`,
      );
    }
    // The CSR first: it is cheap to check, and a bad one must not cost the agent its evidence.
    const csr = parseCsr(Buffer.from(first.params.csr));
    const result = await attestor.attest(Buffer.from(payload), {
      trustDomain: ca.trustDomain,
      nowMs: clock.nowMs(),
      signal: abort.signal,
      challenge: async (challenge) => {
        call.write({ challenge });
        const answer = await inbox.next(abort.signal);
        if (!('challengeResponse' in answer) || !answer.challengeResponse) {
          throw new SigilError('ERR_PERMISSION_DENIED', `${name}: expected a challenge response`);
        }
        return Buffer.from(answer.challengeResponse);
      },
    });
    const agentId = spiffeIdFromPath(ca.trustDomain, result.agentPath);
    const aliasEntries = result.aliases.map((alias) => aliasEntry(ca.trustDomain, alias, agentId));
    const existing = await fetchExistingNode(deps, agentId.toString());
    if (existing?.banned) throw new SigilError('ERR_PERMISSION_DENIED', `agent ${agentId} is banned`);

    const issued = ca.signAgentSvid({ csr, agentId, ttlMs: deps.agentSvidTtlMs });
    const nowMs = clock.nowMs();
    await commit(
      deps,
      result,
      {
        spiffeId: agentId.toString(),
        attestationType: name,
        certSerial: describeCertificate(issued.chain[0]!).serialHex,
        certNotAfterMs: issued.expiresAtMs,
        // Which CA signed it: a revoke waits until no live agent's SVID chains to the authority.
        x509AuthorityId: issued.authorityId,
        // Attestation aliases (a join token's ID) are node entries matching this selector, so they
        // live in the store like any alias and survive server restarts.
        selectors: [...result.selectors, makeSelector('spiffe_id', agentId.toString())],
        banned: false,
        canReattest: result.canReattest,
        createdAtMs: existing?.createdAtMs ?? nowMs,
        updatedAtMs: nowMs,
      },
      aliasEntries,
    );
    metrics.svidsIssued.inc({ type: 'x509', caller: 'attestation' });
    logger.info(
      { agentId: agentId.toString(), attestor: name, aliases: result.aliases, reattest: existing !== null },
      'Agent attested',
    );
    call.write({
      result: {
        spiffeId: agentId.toString(),
        svidChain: [...issued.chain],
        bundle: Buffer.from(encodeSpiffeBundle(ca.bundle())),
        canReattest: result.canReattest,
      },
    });
    call.end();
    return { agentId: agentId.toString() };
  } finally {
    cancelTimer();
    inbox.close();
  }
}

/** The stored record of a re-attesting agent, or null for a new one; store failures propagate. */
async function fetchExistingNode(deps: AgentApiDeps, agentId: string): Promise<AttestedNode | null> {
  try {
    return await deps.store.fetchNode(agentId);
  } catch (err) {
    if (isSigilError(err, 'ERR_NODE_NOT_FOUND')) return null;
    throw err;
  }
}

/** Spends the token, records the node and creates the aliases, all or nothing. */
async function commit(
  deps: AgentApiDeps,
  result: NodeAttestation,
  node: AttestedNode,
  aliasEntries: readonly NewEntry[],
): Promise<void> {
  try {
    await deps.store.commitAttestation({
      ...(result.joinToken !== undefined ? { joinToken: result.joinToken } : {}),
      nowMs: deps.clock.nowMs(),
      node,
      aliasEntries,
    });
  } catch (err) {
    // Spent by a racing attestation, or expired while this one ran: the attestor's refusal of a spent token.
    if (isSigilError(err, 'ERR_TOKEN_NOT_FOUND') || isSigilError(err, 'ERR_TOKEN_EXPIRED')) {
      throw refuseUnknownJoinToken('spent', err);
    }
    throw err;
  }
}

/**
 * The node entry giving the agent `alias`. An alias in Sigil's reserved namespace (a token issued
 * before reserved IDs were refused) would let the agent act for the server: refused.
 */
function aliasEntry(trustDomain: TrustDomain, alias: string, agentId: SpiffeId): NewEntry {
  const id = parseSpiffeId(alias, 'alias');
  if (!id.trustDomain.equals(trustDomain) || isReservedSpiffeId(id)) {
    throw new SigilError(
      'ERR_PERMISSION_DENIED',
      `attestation alias ${quote(alias)} is reserved for Sigil's server and agents or outside "${trustDomain.name}"; issue a new join token`,
      { reason: 'alias' },
    );
  }
  return {
    spiffeId: id.toString(),
    parentId: serverSpiffeId(trustDomain).toString(),
    selectors: [makeSelector('spiffe_id', agentId.toString())],
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    hint: '',
    expiresAtMs: null,
  };
}

/** Turns the request stream into awaitable messages, one at a time. */
function messageQueue(call: AttestCall) {
  const queued: AttestRequest[] = [];
  const waiting: Array<{ resolve(m: AttestRequest): void; reject(e: unknown): void }> = [];
  let ended: SigilError | null = null;
  const onData = (message: AttestRequest) => {
    const next = waiting.shift();
    if (next) next.resolve(message);
    else queued.push(message);
  };
  const onEnd = () => {
    ended = new SigilError('ERR_PERMISSION_DENIED', 'the agent closed the attestation stream early');
    for (const w of waiting.splice(0)) w.reject(ended);
  };
  call.on('data', onData);
  call.on('end', onEnd);
  call.on('cancelled', onEnd);
  return {
    next(signal: AbortSignal): Promise<AttestRequest> {
      const message = queued.shift();
      if (message) return Promise.resolve(message);
      if (ended) return Promise.reject(ended);
      if (signal.aborted) return Promise.reject(signal.reason);
      return new Promise((resolve, reject) => {
        const entry = { resolve, reject };
        waiting.push(entry);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    },
    close() {
      call.off('data', onData);
      call.off('end', onEnd);
      call.off('cancelled', onEnd);
    },
  };
}
