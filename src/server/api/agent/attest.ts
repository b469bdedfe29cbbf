// The Attest stream: params → (challenge ⇄ response)* → result. The node record is written only
// after the attestor accepted the evidence and the agent's SVID was signed, so a refused
// attestation leaves nothing behind.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { AttestRequest, AttestResponse } from '../../../../proto/agent-api.js';
import type { NodeAttestorServer } from '../../../attestors/node/types.js';
import { encodeSpiffeBundle } from '../../../spiffe/bundle.js';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { spiffeIdFromPath } from '../../../spiffe/id.js';
import { makeSelector } from '../../../spiffe/selector.js';
import { describeCertificate } from '../../../spiffe/x509-svid.js';
import { SERVER_ID_PATH } from '../admin/deps.js';
import type { AgentApiDeps } from './deps.js';

/** A whole attestation, challenges included, must finish in this time. */
const ATTESTATION_TIMEOUT_MS = 30_000;

type AttestCall = ServerDuplexStream<AttestRequest, AttestResponse>;

export async function attest(call: AttestCall, deps: AgentApiDeps): Promise<{ agentId: string }> {
  const { ca, store, clock, attestors, metrics, logger } = deps;
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
    const { attestor: name, payload, csr } = first.params;
    const attestor: NodeAttestorServer | undefined = attestors.get(name);
    if (!attestor) {
      throw new SigilError(
        'ERR_PERMISSION_DENIED',
        `node attestor ${quote(name)} is not enabled on this server (enabled: ${[...attestors.keys()].join(', ') || 'none'})`,
      );
    }
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
    const agentId = spiffeIdFromPath(ca.trustDomain, result.agentPath).toString();
    const existing = await store.fetchNode(agentId).catch(() => null);
    if (existing?.banned) throw new SigilError('ERR_PERMISSION_DENIED', `agent ${agentId} is banned`);

    // Attestation aliases (a join token's ID) become node entries matching this agent's own ID, so
    // they live in the store like any alias and survive server restarts.
    const selectors = [...result.selectors, makeSelector('spiffe_id', agentId)];
    for (const alias of result.aliases) await ensureAliasEntry(deps, alias, agentId);

    const issued = ca.signCsr({
      csr: Buffer.from(csr),
      spiffeId: spiffeIdFromPath(ca.trustDomain, result.agentPath),
      ttlMs: deps.agentSvidTtlMs,
    });
    const nowMs = clock.nowMs();
    await store.upsertNode({
      spiffeId: agentId,
      attestationType: name,
      certSerial: describeCertificate(issued.chain[0]!).serialHex,
      certNotAfterMs: issued.expiresAtMs,
      selectors,
      banned: false,
      canReattest: result.canReattest,
      createdAtMs: existing?.createdAtMs ?? nowMs,
      updatedAtMs: nowMs,
    });
    metrics.svidsIssued.inc({ type: 'x509', caller: 'attestation' });
    logger.info(
      { agentId, attestor: name, aliases: result.aliases, reattest: existing !== null },
      'Agent attested',
    );
    call.write({
      result: {
        spiffeId: agentId,
        svidChain: [...issued.chain],
        bundle: Buffer.from(encodeSpiffeBundle(ca.bundle())),
        canReattest: result.canReattest,
      },
    });
    call.end();
    return { agentId };
  } finally {
    cancelTimer();
    inbox.close();
  }
}

async function ensureAliasEntry(deps: AgentApiDeps, alias: string, agentId: string): Promise<void> {
  try {
    await deps.store.createEntry({
      spiffeId: alias,
      parentId: spiffeIdFromPath(deps.ca.trustDomain, SERVER_ID_PATH).toString(),
      selectors: [makeSelector('spiffe_id', agentId)],
      x509SvidTtlMs: 0,
      jwtSvidTtlMs: 0,
      dnsNames: [],
      federatesWith: [],
      admin: false,
      downstream: false,
      hint: '',
      expiresAtMs: null,
    });
  } catch (err) {
    // Already there from an earlier attestation of the same agent: nothing to add.
    if (!(err instanceof SigilError && err.code === 'ERR_ENTRY_DUPLICATE')) throw err;
  }
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
