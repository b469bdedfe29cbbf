// The agent's own identity over its life: renews its SVID at the time src/rotation gives (jitter
// drawn once per SVID), retries a failed renewal with backoff, renews at once when the authority
// that signed it is tainted, and attests again when the server refuses it, if the evidence it was
// given can still work (an attestor that may attest again, or a join token not yet used). Every
// failure is logged and kept for health; none is swallowed. Deciding when lives in renewal-plan.ts.
import type { Logger } from 'pino';
import { Scheduler } from '../../rotation/index.js';
import { bundleToPem, type TrustBundle } from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import { encodePem } from '../../spiffe/pem.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { AgentState } from '../agent-state.js';
import { createSvidKeyRequest } from '../manager/csr.js';
import { agentRenewAtMs, renewRetryDelayMs, taintRenewDelayMs } from './renewal-plan.js';
import { classifyServerFailure, describeServerFailure } from './server-failure.js';
import { isSignedByTainted } from './tainted.js';

const RENEWAL = 'agent-svid';

/** What the identity needs of the server connection. */
export interface IdentityConnection {
  setBundlePem(pem: string): void;
  setIdentity(certificatePem: string, privateKeyPem: string): void;
  renewAgentSvid(csr: Buffer): Promise<{ svidChain: Buffer[] }>;
  /** Drops the open channel: the server accepts only the SVID it issued last. */
  reconnect(): void;
}

/** The attestation evidence the agent was started with. */
export interface AttestationEvidence {
  /** Attests with it (challenges included) and returns the new state; does not save it. */
  attest(): Promise<AgentState>;
  /** SHA-256 of the join token when the evidence is one (single-use), else null. */
  readonly joinTokenSha256: string | null;
}

export interface AgentIdentityOptions {
  readonly initial: AgentState;
  /** When `initial` was received, or -Infinity for an SVID saved by an earlier run. */
  readonly receivedAtMs: number;
  readonly connection: IdentityConnection;
  /** Null when no node attestor is configured: the agent can only renew. */
  readonly evidence: AttestationEvidence | null;
  /** Persists a state before it is used (the key 0600). */
  save(state: AgentState): Promise<void>;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
}

/** What health needs to know of the agent's own identity. */
export interface IdentityHealth {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly renewAtMs: number;
  readonly lastRenewalError: string | null;
  readonly refusedReason: string | null;
}

export class AgentIdentity {
  private current: AgentState;
  private renewAt = 0;
  private failures = 0;
  private lastError: string | null = null;
  private refusedReason: string | null = null;
  /** The current SVID's renewal was already brought forward for a taint. */
  private taintHandled = false;
  /** Join tokens the server refused in this run: trying one again cannot work. */
  private readonly refusedTokens = new Set<string>();
  private attesting: Promise<boolean> | null = null;
  private readonly scheduler: Scheduler;

  constructor(private readonly options: AgentIdentityOptions) {
    this.current = options.initial;
    this.scheduler = new Scheduler(options.clock, {
      onError: (err) => options.logger.error({ err }, 'Agent SVID renewal failed unexpectedly'),
    });
    this.use(options.initial, options.receivedAtMs);
  }

  get state(): AgentState {
    return this.current;
  }

  health(): IdentityHealth {
    const { notBeforeMs, notAfterMs } = describeCertificate(this.current.chain[0]!);
    return {
      notBeforeMs,
      notAfterMs,
      renewAtMs: this.renewAt,
      lastRenewalError: this.lastError,
      refusedReason: this.refusedReason,
    };
  }

  /** A bundle pushed by the server replaces ours (it is what the next connections trust). */
  setBundle(bundle: TrustBundle): void {
    this.current = { ...this.current, bundle };
  }

  /**
   * The server's current tainted authorities: if one signed our SVID, renew within a few seconds
   * (jittered) so the server can revoke it without locking us out. Once per SVID.
   */
  noteTainted(tainted: ReadonlySet<string>, authorities: readonly Buffer[]): void {
    if (this.taintHandled || !isSignedByTainted(this.current.chain, authorities, tainted)) return;
    this.taintHandled = true;
    const atMs = this.options.clock.nowMs() + taintRenewDelayMs(this.options.random);
    this.options.logger.info(
      { agentId: this.current.spiffeId, renewAt: new Date(atMs).toISOString() },
      'The authority that signed the agent SVID is tainted; renewing it now',
    );
    this.scheduler.schedule(RENEWAL, atMs, () => this.renew());
  }

  /**
   * The server refused this agent: attest again if the evidence can still work. Resolves true once
   * attested again; false (logged, and reported by health) when it cannot or the attempt failed.
   */
  async onRefused(reason: string): Promise<boolean> {
    this.refusedReason = reason;
    if (!this.canAttest()) {
      this.options.logger.error(
        { agentId: this.current.spiffeId, reason },
        'The server refused this agent (evicted, banned, or its SVID is no longer accepted) and its attestor cannot attest again; serving cached SVIDs until they expire. Re-run the agent with new attestation evidence (e.g. a new --join-token).',
      );
      return false;
    }
    return this.attestAgain(`refused: ${reason}`);
  }

  /** Stops renewing; resolves once a renewal in progress has settled. */
  close(): Promise<void> {
    return this.scheduler.close();
  }

  /** Whether attesting again can work: evidence that may attest again, or a join token not yet spent. */
  private canAttest(): boolean {
    const evidence = this.options.evidence;
    if (!evidence) return false;
    const token = evidence.joinTokenSha256;
    if (token === null) return this.current.canReattest;
    return token !== this.current.joinTokenSha256 && !this.refusedTokens.has(token);
  }

  private async attestAgain(reason: string): Promise<boolean> {
    this.attesting ??= this.attestOnce(reason).finally(() => {
      this.attesting = null;
    });
    return this.attesting;
  }

  /** True once attested again; false when it failed (logged, kept for health). */
  private async attestOnce(reason: string): Promise<boolean> {
    const { evidence, logger, clock } = this.options;
    try {
      const attested = { ...(await evidence!.attest()), joinTokenSha256: evidence!.joinTokenSha256 };
      const receivedAtMs = clock.nowMs();
      await this.options.save(attested);
      this.use(attested, receivedAtMs);
      this.options.connection.reconnect();
      this.refusedReason = null;
      logger.info(
        { agentId: attested.spiffeId, reason, expiresAt: new Date(attested.expiresAtMs).toISOString() },
        'Node attested',
      );
      return true;
    } catch (err) {
      const refused = classifyServerFailure(err) === 'refused';
      if (refused && evidence!.joinTokenSha256) this.refusedTokens.add(evidence!.joinTokenSha256);
      this.lastError = describeServerFailure(err);
      logger.error(
        { err: this.lastError, reason },
        refused
          ? 'Attesting again was refused; re-run the agent with new attestation evidence (e.g. a new --join-token)'
          : 'Attesting again failed; retrying later',
      );
      return false;
    }
  }

  private use(next: AgentState, receivedAtMs: number): void {
    const { connection, random } = this.options;
    this.current = next;
    connection.setBundlePem(bundleToPem(next.bundle));
    connection.setIdentity(
      next.chain.map((c) => encodePem('CERTIFICATE', c)).join(''),
      next.key.export({ format: 'pem', type: 'pkcs8' }) as string,
    );
    const { notBeforeMs, notAfterMs } = describeCertificate(next.chain[0]!);
    // Drawn once per SVID (STYLE §9): retries and restarts of the timer keep this point.
    this.renewAt = agentRenewAtMs({ notBeforeMs, notAfterMs, receivedAtMs }, random);
    this.failures = 0;
    this.lastError = null;
    this.taintHandled = false;
    this.scheduler.schedule(RENEWAL, this.renewAt, () => this.renew());
  }

  private async renew(): Promise<void> {
    const { connection, clock, logger } = this.options;
    try {
      const request = createSvidKeyRequest();
      const { svidChain } = await connection.renewAgentSvid(request.csr);
      const receivedAtMs = clock.nowMs();
      const next: AgentState = {
        ...this.current,
        chain: svidChain,
        key: request.key,
        expiresAtMs: describeCertificate(svidChain[0]!).notAfterMs,
      };
      await this.options.save(next);
      this.use(next, receivedAtMs);
      this.refusedReason = null;
      // The open HTTP/2 connection still presents the old SVID, which the server no longer accepts.
      connection.reconnect();
      logger.info(
        { agentId: next.spiffeId, expiresAt: new Date(next.expiresAtMs).toISOString() },
        'Agent SVID renewed',
      );
    } catch (err) {
      await this.renewalFailed(err);
    }
  }

  private async renewalFailed(err: unknown): Promise<void> {
    const { clock, logger, random } = this.options;
    const kind = classifyServerFailure(err);
    const described = describeServerFailure(err);
    const expired = this.current.expiresAtMs <= clock.nowMs();
    if ((kind === 'refused' || expired) && (await this.tryAttest(kind, described))) return;
    this.failures++;
    this.lastError = described;
    const delayMs = renewRetryDelayMs(this.failures, clock.nowMs(), this.current.expiresAtMs, random);
    logger.warn(
      { err: described, kind, failures: this.failures, retryInMs: delayMs },
      'Agent SVID renewal failed; retrying',
    );
    this.scheduler.schedule(RENEWAL, clock.nowMs() + delayMs, () => this.renew());
  }

  /** After a refused renewal or an expired SVID: attest again when possible; true once done. */
  private async tryAttest(kind: string, described: string): Promise<boolean> {
    if (kind === 'refused') return this.onRefused(described);
    if (!this.canAttest()) return false;
    return this.attestAgain('SVID expired');
  }
}
