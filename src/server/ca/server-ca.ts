// The server's certificate authority: signs X.509- and JWT-SVIDs with the active authorities, and
// rotates them by itself. When to prepare, activate and prune is decided by src/rotation from the
// journaled times (journal-steps.ts turns decisions into the next journal, as a value); this class
// acts, through CaState, which saves the next journal and only then adopts it, switches signers
// and publishes the bundle, so a restart mid-rotation resumes exactly and a failed save changes
// nothing. A failed step is retried with backoff and reported (rotation-health.ts); operator steps
// that could lock agents out are refused unless forced (operator-guards.ts).
import { randomInt, type X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { type RotationOptions, Scheduler } from '../../rotation/index.js';
import type { TrustBundle } from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import type { TrustDomain } from '../../spiffe/id.js';
import type { AuthorityView, ForceOption } from '../api/admin/deps.js';
import type { BundleStore, JournalStore, NodeStore } from '../datastore/types.js';
import {
  type AuthorityFactoryOptions,
  BACKDATE_MS,
  createJwtAuthority,
  createX509Authority,
} from './authority-factory.js';
import { authorityView } from './authority-view.js';
import { CaState } from './ca-state.js';
import type { AuthorityKind, AuthorityRecord } from './journal.js';
import {
  decideRotation,
  isOverdue,
  type KindStep,
  nextStepAtMs,
  planRotation,
  safeActivationAtMs,
  withActivated,
  without,
  withPrepared,
  withTainted,
} from './journal-steps.js';
import { ChainTracker } from './live-chains.js';
import {
  checkNothingChains,
  checkPublishLead,
  findAuthority,
  refuseUnlessForced,
  requireOld,
  requirePrepared,
  requireTainted,
} from './operator-guards.js';
import { type CaObserver, RotationHealth } from './rotation-health.js';
import { type IssuedX509Svid, SvidSigner } from './svid-signer.js';

export { BUNDLE_REFRESH_HINT_S } from './ca-bundle.js';
export type { IssuedX509Svid };
export { BACKDATE_MS };

/** Rotation checks never run closer together than this, whatever the schedule says. */
const MIN_WAKE_MS = 500;
const KINDS: readonly AuthorityKind[] = ['x509', 'jwt'];

export interface ServerCaOptions extends AuthorityFactoryOptions {
  readonly defaultX509SvidTtlMs: number;
  readonly defaultJwtSvidTtlMs: number;
  /** The journal and bundle; node records to tell what still chains to an old authority. */
  readonly store: JournalStore & BundleStore & Pick<NodeStore, 'listNodes'>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Rotation thresholds for both kinds (src/rotation documents the defaults). */
  readonly rotation?: RotationOptions;
  /** JWT keys get extra prune grace: validators accept tokens a little past exp. */
  readonly jwtRotation?: RotationOptions;
  /** Jitter of rotation retries, in [0, 1). Defaults to crypto randomness. */
  readonly random?: () => number;
}

export class ServerCa {
  private readonly signer: SvidSigner;
  private readonly state: CaState;
  private readonly scheduler: Scheduler;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly health = new RotationHealth();
  private readonly random: () => number;
  private observer: CaObserver | undefined;
  /** What the server's and agents' SVIDs chain to: a revoke is refused while anything live does. */
  private readonly chains: ChainTracker;

  private constructor(private readonly options: ServerCaOptions) {
    this.signer = new SvidSigner(options);
    this.state = new CaState(options, this.signer, () => this.reportActive());
    this.chains = new ChainTracker(options.store);
    this.random = options.random ?? (() => randomInt(0, 2 ** 32) / 2 ** 32);
    this.scheduler = new Scheduler(options.clock, {
      // rotateOnSchedule logs and counts its own failures; this only sees a failure of doing so.
      onError: (err) => options.logger.error({ err }, 'Authority rotation check failed'),
    });
  }

  /** Loads the journal, makes sure each kind has a usable active authority, rotates what is due, publishes. */
  static async open(options: ServerCaOptions): Promise<ServerCa> {
    const ca = new ServerCa(options);
    await ca.exclusive(() => ca.start());
    return ca;
  }

  /** Stops rotating; resolves once a rotation step in progress has finished. */
  async close(): Promise<void> {
    await this.scheduler.close();
    await this.queue;
  }

  get trustDomain(): TrustDomain {
    return this.options.trustDomain;
  }

  /** The trust bundle of our own trust domain, as published. */
  bundle(): TrustBundle {
    return this.state.bundle;
  }

  /** Every X.509 authority in the journal (prepared, active, old), as certificates; revoked ones are gone. */
  x509AuthorityCertificates(): readonly X509Certificate[] {
    return this.state.x509Certificates();
  }

  /** IDs (subject key IDs) of tainted X.509 authorities: agents replace SVIDs they signed. */
  taintedX509Authorities(): string[] {
    return this.state.journal.x509.filter((a) => a.tainted).map((a) => a.id);
  }

  get x509Authority(): { readonly id: string; readonly notAfterMs: number } {
    const { id, notAfterMs } = this.signer.signers.x509;
    return { id, notAfterMs };
  }

  get jwtAuthority(): { readonly kid: string; readonly notAfterMs: number } {
    const { kid, notAfterMs } = this.signer.signers.jwt;
    return { kid, notAfterMs };
  }

  /** Reports active-authority expiries now and after each change, and rotation outcomes. */
  observe(observer: CaObserver): void {
    this.observer = observer;
    this.reportActive();
  }

  /** False while rotation keeps failing, or failed with an active authority overdue for replacement. */
  isRotationReady(): boolean {
    const nowMs = this.options.clock.nowMs();
    const overdue = KINDS.some((kind) => isOverdue(this.list(kind), nowMs, this.rotationOptions(kind)));
    return this.health.isReady(overdue);
  }

  /** A workload X509-SVID; Sigil's reserved namespace is refused (see SvidSigner). */
  signX509Svid(params: Parameters<SvidSigner['signX509Svid']>[0]): IssuedX509Svid {
    return this.signer.signX509Svid(params);
  }

  /** A workload X509-SVID for a CSR's key; the CSR's names and extensions are ignored. */
  signCsr(params: Parameters<SvidSigner['signCsr']>[0]): IssuedX509Svid {
    return this.signer.signCsr(params);
  }

  mintJwtSvid(params: Parameters<SvidSigner['mintJwtSvid']>[0]): ReturnType<SvidSigner['mintJwtSvid']> {
    return this.signer.mintJwtSvid(params);
  }

  /** The server's own SVID, with the server marker; only ServerIdentity calls this. */
  signServerSvid(params: Parameters<SvidSigner['signServerSvid']>[0]): IssuedX509Svid {
    const issued = this.signer.signServerSvid(params);
    this.chains.noteServerSvid(issued);
    return issued;
  }

  /** An agent's SVID; only the agent API's attestation and renewal call this. */
  signAgentSvid(params: Parameters<SvidSigner['signAgentSvid']>[0]): IssuedX509Svid {
    return this.signer.signAgentSvid(params);
  }

  /** Every authority with its timeline; old X.509 ones with what still chains to them. */
  async authorities(): Promise<{ x509: AuthorityView[]; jwt: AuthorityView[] }> {
    const dependentsOf = await this.chains.dependents(this.options.clock.nowMs());
    const x509 = this.list('x509');
    const opts = this.rotationOptions('x509');
    return {
      x509: x509.map((a) => authorityView(a, x509, opts, a.state === 'old' ? dependentsOf(a.id) : null)),
      jwt: this.list('jwt').map((a) => this.view('jwt', a)),
    };
  }

  /** Operator: prepares a successor now (replacing an unactivated prepared one). */
  prepare(kind: AuthorityKind): Promise<AuthorityView> {
    return this.exclusive(async () => {
      const created = await this.create(kind, this.options.clock.nowMs());
      await this.commit(kind, withPrepared(this.list(kind), created), `operator prepared ${created.id}`);
      return this.view(kind, created);
    });
  }

  /** Operator: activates the prepared authority, once it has been published for the publish lead. */
  activate(kind: AuthorityKind, options: ForceOption = {}): Promise<AuthorityView> {
    return this.exclusive(async () => {
      const prepared = requirePrepared(this.list(kind), kind);
      const nowMs = this.options.clock.nowMs();
      const safeAtMs = safeActivationAtMs(prepared, this.rotationOptions(kind));
      refuseUnlessForced(
        checkPublishLead(kind, prepared.id, nowMs, safeAtMs),
        options.force === true,
        this.options.logger,
        { kind, authorityId: prepared.id, safeAt: new Date(safeAtMs).toISOString() },
        'Authority activation forced before its publish lead',
      );
      const list = withActivated(this.list(kind), prepared.id, nowMs, (id) =>
        this.signer.lastSignedExpiresAtMs(id),
      );
      await this.commit(kind, list, `operator activated ${prepared.id}`, [prepared.id]);
      return this.view(kind, this.find(kind, prepared.id));
    });
  }

  /** Operator: marks an old authority compromised; agents (and the server) replace what it signed. */
  taint(kind: AuthorityKind, id: string): Promise<AuthorityView> {
    return this.exclusive(async () => {
      requireOld(this.find(kind, id), kind);
      await this.commit(kind, withTainted(this.list(kind), id), `operator tainted ${id}`);
      return this.view(kind, this.find(kind, id));
    });
  }

  /** Operator: removes a tainted authority from the bundle once nothing live chains to it. */
  revoke(kind: AuthorityKind, id: string, options: ForceOption = {}): Promise<AuthorityView> {
    return this.exclusive(async () => {
      const target = this.find(kind, id);
      requireTainted(target, kind);
      if (kind === 'x509') {
        const dependentsOf = await this.chains.dependents(this.options.clock.nowMs());
        refuseUnlessForced(
          checkNothingChains(id, dependentsOf(id)),
          options.force === true,
          this.options.logger,
          { kind, authorityId: id },
          'Authority revocation forced while credentials chain to it',
        );
      }
      await this.commit(kind, without(this.list(kind), [id]), `operator revoked ${id}`);
      return this.view(kind, target);
    });
  }

  private async start(): Promise<void> {
    await this.state.load();
    if (!(await this.rotate())) await this.state.useCurrent();
    await this.state.publish();
    this.health.succeeded(this.options.clock.nowMs());
    this.arm();
  }

  /** A scheduled rotation: never throws; on failure it counts, logs and re-arms with backoff. */
  private async rotateOnSchedule(): Promise<void> {
    const { clock, logger } = this.options;
    let failure: { err: unknown } | undefined;
    try {
      // After a failure the store is the truth: a save that failed after committing moved it on.
      if (this.health.isFailing) await this.state.reload();
      await this.rotate();
      this.health.succeeded(clock.nowMs());
      this.observer?.rotationSucceeded(clock.nowMs());
    } catch (err) {
      failure = { err };
      this.observer?.rotationFailed(this.health.failed(clock.nowMs()));
    } finally {
      const nextAtMs = this.arm();
      if (failure) {
        const retryInS = nextAtMs === undefined ? null : Math.round((nextAtMs - clock.nowMs()) / 1000);
        logger.error(
          { err: failure.err, consecutiveFailures: this.health.status.consecutiveFailures, retryInS },
          `Authority rotation failed; retrying in ${retryInS}s`,
        );
      }
    }
  }

  /**
   * Applies whatever rotation is due now; true when it changed the journal. Keys are made first (the
   * slow, failure-prone part), then the next journal is built at once, so nothing separates reading
   * what a retiring authority signed from saving it and switching signers.
   */
  private async rotate(): Promise<boolean> {
    const nowMs = this.options.clock.nowMs();
    const steps: KindStep[] = [];
    for (const kind of KINDS) {
      const decision = decideRotation(this.list(kind), nowMs, this.rotationOptions(kind));
      const needsKey = decision.step === 'prepare' || (decision.step === 'replace-active' && !decision.reuse);
      steps.push({ kind, decision, ...(needsKey ? { created: await this.create(kind, nowMs) } : {}) });
    }
    const plan = planRotation(
      this.state.journal,
      steps,
      nowMs,
      (kind) => this.rotationOptions(kind),
      (id) => this.signer.lastSignedExpiresAtMs(id),
    );
    if (plan.changes.length > 0) await this.state.saveAndAdopt(plan);
    else if (this.state.pendingPublish) await this.state.publish();
    return plan.changes.length > 0;
  }

  /** An operator's change to one kind: saved and adopted like a scheduled one, then re-armed. */
  private async commit(
    kind: AuthorityKind,
    list: readonly AuthorityRecord[],
    change: string,
    activated: readonly string[] = [],
  ): Promise<void> {
    try {
      await this.state.saveAndAdopt({
        next: { ...this.state.journal, [kind]: list },
        changes: [{ kind, change }],
        activated,
      });
    } finally {
      this.arm();
    }
  }

  /**
   * Sleeps until the earliest next rotation step of either kind, or sooner to retry a failure with
   * backoff (never later than the normal next step, so an expiring CA is still replaced in time).
   */
  private arm(): number | undefined {
    const nowMs = this.options.clock.nowMs();
    let atMs = this.state.pendingPublish
      ? nowMs
      : Math.min(...KINDS.map((kind) => nextStepAtMs(this.list(kind), this.rotationOptions(kind))));
    if (this.health.isFailing) {
      const retryAtMs = nowMs + this.health.retryDelayMs(this.random);
      // A step already due is the one that failed: it waits for the backoff.
      atMs = atMs <= nowMs ? retryAtMs : Math.min(atMs, retryAtMs);
    }
    if (!Number.isFinite(atMs)) return undefined;
    atMs = Math.max(atMs, nowMs + MIN_WAKE_MS);
    this.scheduler.schedule('rotate', atMs, () => this.exclusive(() => this.rotateOnSchedule()));
    return atMs;
  }

  private reportActive(): void {
    if (!this.observer) return;
    const { x509, jwt } = this.signer.signers;
    this.observer.activeAuthority('x509', x509.notAfterMs);
    this.observer.activeAuthority('jwt', jwt.notAfterMs);
  }

  private async create(kind: AuthorityKind, nowMs: number): Promise<AuthorityRecord> {
    const record =
      kind === 'x509'
        ? await createX509Authority(this.options, nowMs)
        : await createJwtAuthority(this.options, nowMs);
    return { ...record, preparedAtMs: nowMs };
  }

  private list(kind: AuthorityKind): readonly AuthorityRecord[] {
    return this.state.journal[kind];
  }

  private find(kind: AuthorityKind, id: string): AuthorityRecord {
    return findAuthority(this.list(kind), kind, id);
  }

  private rotationOptions(kind: AuthorityKind): RotationOptions {
    return kind === 'jwt'
      ? { ...this.options.rotation, ...this.options.jwtRotation }
      : (this.options.rotation ?? {});
  }

  private view(kind: AuthorityKind, a: AuthorityRecord): AuthorityView {
    return authorityView(a, this.list(kind), this.rotationOptions(kind));
  }

  /** Runs rotation steps one at a time: the scheduler and operators never interleave writes. */
  private exclusive<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(step, step);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
