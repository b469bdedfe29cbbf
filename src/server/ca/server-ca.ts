// The server's certificate authority: signs X.509- and JWT-SVIDs with the active authorities, and
// rotates them by itself. When to prepare, activate and prune is decided by src/rotation from the
// journaled times; this class acts, always journaling a change before publishing the bundle, so a
// restart mid-rotation resumes exactly (never losing the active key, never activating a key the
// agents have not had time to see). Keys stay in the keys directory (0600 files).
import { createPublicKey } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  type AuthorityTimes,
  authoritySchedule,
  type RotationOptions,
  Scheduler,
  shouldActivateNext,
  shouldPrepareNext,
  shouldPrune,
} from '../../rotation/index.js';
import {
  createTrustBundle,
  encodeSpiffeBundle,
  parseSpiffeBundle,
  type TrustBundle,
} from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import { quote, SigilError } from '../../spiffe/errors.js';
import type { TrustDomain } from '../../spiffe/id.js';
import { decodePemBlocks } from '../../spiffe/pem.js';
import { readPrivateKeyFile } from '../../spiffe/secret-file.js';
import { certificateMatchesKey } from '../../spiffe/x509-authority.js';
import { prepareIssuer } from '../../spiffe/x509-svid.js';
import type { AuthorityView } from '../api/admin/deps.js';
import type { BundleStore, JournalStore } from '../datastore/types.js';
import {
  type AuthorityFactoryOptions,
  BACKDATE_MS,
  createJwtAuthority,
  createX509Authority,
} from './authority-factory.js';
import {
  type AuthorityKind,
  type AuthorityRecord,
  type CaJournal,
  EMPTY_JOURNAL,
  inState,
  parseJournal,
  type X509AuthorityRecord,
} from './journal.js';
import { type ActiveSigners, type IssuedX509Svid, SvidSigner } from './svid-signer.js';

export type { IssuedX509Svid };
export { BACKDATE_MS };
/** How often consumers should re-fetch the bundle (SPIFFE federation default, 5 minutes). */
export const BUNDLE_REFRESH_HINT_S = 300;
/** Rotation checks never run closer together than this, whatever the schedule says. */
const MIN_WAKE_MS = 500;
const KINDS: readonly AuthorityKind[] = ['x509', 'jwt'];

export interface ServerCaOptions extends AuthorityFactoryOptions {
  readonly defaultX509SvidTtlMs: number;
  readonly defaultJwtSvidTtlMs: number;
  readonly store: JournalStore & BundleStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Rotation thresholds for both kinds (src/rotation documents the defaults). */
  readonly rotation?: RotationOptions;
  /** JWT keys get extra prune grace: validators accept tokens a little past exp. */
  readonly jwtRotation?: RotationOptions;
}

export class ServerCa {
  private journal: CaJournal = EMPTY_JOURNAL;
  private journalVersion = 0;
  private readonly signer: SvidSigner;
  private currentBundle!: TrustBundle;
  private readonly scheduler: Scheduler;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly options: ServerCaOptions) {
    this.signer = new SvidSigner(options);
    this.scheduler = new Scheduler(options.clock, {
      onError: (err) =>
        options.logger.error({ err }, 'Authority rotation failed; retrying at the next check'),
    });
  }

  /** Loads the journal, makes sure each kind has a usable active authority, rotates what is due, publishes. */
  static async open(options: ServerCaOptions): Promise<ServerCa> {
    const ca = new ServerCa(options);
    await ca.exclusive(() => ca.rotate(true));
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
    return this.currentBundle;
  }

  /** IDs (subject key IDs) of tainted X.509 authorities: agents replace SVIDs they signed. */
  taintedX509Authorities(): string[] {
    return this.journal.x509.filter((a) => a.tainted).map((a) => a.id);
  }

  get x509Authority(): { readonly id: string; readonly notAfterMs: number } {
    const { id, notAfterMs } = this.signer.signers.x509;
    return { id, notAfterMs };
  }

  get jwtAuthority(): { readonly kid: string; readonly notAfterMs: number } {
    const { kid, notAfterMs } = this.signer.signers.jwt;
    return { kid, notAfterMs };
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
    return this.signer.signServerSvid(params);
  }

  /** An agent's SVID; only the agent API's attestation and renewal call this. */
  signAgentSvid(params: Parameters<SvidSigner['signAgentSvid']>[0]): IssuedX509Svid {
    return this.signer.signAgentSvid(params);
  }

  authorities(): { x509: AuthorityView[]; jwt: AuthorityView[] } {
    return {
      x509: this.journal.x509.map((a) => this.view('x509', a)),
      jwt: this.journal.jwt.map((a) => this.view('jwt', a)),
    };
  }

  /** Operator: prepares a successor now (replacing an unactivated prepared one). */
  prepare(kind: AuthorityKind): Promise<AuthorityView> {
    return this.exclusive(async () => {
      const nowMs = this.options.clock.nowMs();
      const created = await this.create(kind, nowMs);
      await this.commit(
        kind,
        [...this.list(kind).filter((a) => a.state !== 'prepared'), created],
        `operator prepared ${created.id}`,
      );
      return this.view(kind, created);
    });
  }

  /** Operator: activates the prepared authority now. */
  activate(kind: AuthorityKind): Promise<AuthorityView> {
    return this.exclusive(async () => {
      const prepared = inState(this.list(kind), 'prepared');
      if (!prepared) {
        throw new SigilError(
          'ERR_AUTHORITY_STATE',
          `no prepared ${kind} authority to activate; run "localauthority prepare --kind ${kind}" first`,
        );
      }
      await this.commit(kind, this.activated(kind, prepared.id), `operator activated ${prepared.id}`);
      return this.view(kind, this.find(kind, prepared.id));
    });
  }

  /** Operator: marks an old authority compromised; agents replace what it signed. */
  taint(kind: AuthorityKind, id: string): Promise<AuthorityView> {
    return this.exclusive(async () => {
      const target = this.find(kind, id);
      if (target.state !== 'old') {
        throw new SigilError(
          'ERR_AUTHORITY_STATE',
          `${kind} authority ${id} is ${target.state}; only an old authority can be tainted (activate its successor first)`,
        );
      }
      await this.commit(
        kind,
        this.list(kind).map((a) => (a.id === id ? { ...a, tainted: true } : a)),
        `operator tainted ${id}`,
      );
      return this.view(kind, this.find(kind, id));
    });
  }

  /** Operator: removes a tainted authority from the bundle; what it signed stops verifying. */
  revoke(kind: AuthorityKind, id: string): Promise<AuthorityView> {
    return this.exclusive(async () => {
      const target = this.find(kind, id);
      if (!target.tainted) {
        throw new SigilError(
          'ERR_AUTHORITY_STATE',
          `${kind} authority ${id} is not tainted; taint it first, then revoke once agents have re-signed`,
        );
      }
      await this.commit(
        kind,
        this.list(kind).filter((a) => a.id !== id),
        `operator revoked ${id}`,
      );
      await this.removeKey(target);
      return this.view(kind, target);
    });
  }

  /** Applies whatever rotation is due now, then sleeps until the next step. */
  private async rotate(starting = false): Promise<void> {
    const nowMs = this.options.clock.nowMs();
    if (starting) {
      const stored = await this.options.store.loadJournal();
      this.journal = stored ? parseJournal(stored.data) : EMPTY_JOURNAL;
      this.journalVersion = stored?.version ?? 0;
    }
    let changed = false;
    for (const kind of KINDS) {
      const opts = this.rotationOptions(kind);
      let list: AuthorityRecord[] = [...this.list(kind)];
      let why = '';
      const active = inState(list, 'active');
      const prepared = inState(list, 'prepared');
      if (!active || active.notAfterMs <= nowMs) {
        // No usable signer (first start, or down past the CA's expiry): sign with a fresh one now.
        const next = prepared && prepared.notAfterMs > nowMs ? prepared : await this.create(kind, nowMs);
        list = [...list.filter((a) => a.state !== 'prepared'), next];
        list = this.activated(kind, next.id, list);
        why = active ? `active authority ${active.id} had expired` : 'no active authority';
      } else if (shouldPrepareNext(nowMs, times(active), prepared && times(prepared), opts)) {
        const next = await this.create(kind, nowMs);
        list = [...list.filter((a) => a.state !== 'prepared'), next];
        why = `prepared successor ${next.id}`;
      } else if (prepared && shouldActivateNext(nowMs, times(active), times(prepared), opts)) {
        list = this.activated(kind, prepared.id, list);
        why = `activated ${prepared.id}`;
      }
      const pruned = list.filter((a) => shouldPrune(nowMs, times(a), opts) && !a.tainted);
      if (pruned.length > 0) {
        list = list.filter((a) => !pruned.includes(a));
        why = `${why ? `${why}; ` : ''}pruned ${pruned.map((a) => a.id).join(', ')}`;
      }
      if (why) {
        this.journal = { ...this.journal, [kind]: list };
        this.options.logger.info({ kind, change: why }, 'Authority rotation');
        changed = true;
        for (const gone of pruned) await this.removeKey(gone);
      }
    }
    if (changed) await this.saveJournal();
    if (changed || starting) await this.apply();
    this.arm();
  }

  /** Journal first, then signers and bundle: what agents see is always recoverable from the store. */
  private async commit(kind: AuthorityKind, list: readonly AuthorityRecord[], why: string): Promise<void> {
    this.journal = { ...this.journal, [kind]: list };
    await this.saveJournal();
    this.options.logger.info({ kind, change: why }, 'Authority rotation');
    await this.apply();
    this.arm();
  }

  private async saveJournal(): Promise<void> {
    const saved = await this.options.store.saveJournal(JSON.stringify(this.journal), this.journalVersion);
    this.journalVersion = saved.version;
  }

  /** Marks `id` active (stamping when) and the current active old (recording what it signed). */
  private activated(
    kind: AuthorityKind,
    id: string,
    list: readonly AuthorityRecord[] = this.list(kind),
  ): AuthorityRecord[] {
    const nowMs = this.options.clock.nowMs();
    return list.map((a): AuthorityRecord => {
      if (a.id === id) {
        // Activated by this process: from now on every expiry it signs is tracked exactly.
        this.signer.track(a.id);
        return { ...a, state: 'active', activatedAtMs: nowMs, preparedAtMs: a.preparedAtMs ?? nowMs };
      }
      if (a.state !== 'active') return a;
      // Signed by this process since activation: the latest expiry is exact. Otherwise (activated
      // before a restart) anything up to its own notAfter may exist.
      const lastSignedExpiresAtMs = this.signer.lastSignedExpiresAtMs(a.id) ?? a.notAfterMs;
      return { ...a, state: 'old', lastSignedExpiresAtMs };
    });
  }

  /** Loads the active keys and publishes the bundle for the current journal. */
  private async apply(): Promise<void> {
    const x509 = inState(this.journal.x509, 'active')!;
    const jwt = inState(this.journal.jwt, 'active')!;
    this.signer.use({
      x509: await this.loadX509(x509),
      jwt: {
        kid: jwt.id,
        notAfterMs: jwt.notAfterMs,
        key: await readPrivateKeyFile(path.join(this.options.keysDir, jwt.keyFile)),
      },
    });
    await this.publishBundle();
  }

  private async loadX509(record: X509AuthorityRecord): Promise<ActiveSigners['x509']> {
    const certDer = decodePemBlocks(record.certPem, 'CERTIFICATE', 'ca journal')[0]!;
    const key = await readPrivateKeyFile(path.join(this.options.keysDir, record.keyFile));
    if (!certificateMatchesKey(certDer, key)) {
      throw new SigilError(
        'ERR_CA_UNAVAILABLE',
        `key file ${record.keyFile} does not match CA ${record.id}; restore the keys directory of this data dir`,
      );
    }
    const upstreamChain = record.upstreamChainPem
      ? decodePemBlocks(record.upstreamChainPem, 'CERTIFICATE', 'ca journal')
      : [];
    const chainTail = this.options.upstream || upstreamChain.length > 0 ? [certDer, ...upstreamChain] : [];
    return { id: record.id, notAfterMs: record.notAfterMs, issuer: prepareIssuer(certDer, key), chainTail };
  }

  /** Writes the bundle built from the journal when its content changed (sequence + 1). */
  private async publishBundle(): Promise<void> {
    const { store, trustDomain, upstream, clock } = this.options;
    const x509Authorities = upstream
      ? [...upstream.roots]
      : this.journal.x509.map((a) => decodePemBlocks(a.certPem, 'CERTIFICATE', 'ca journal')[0]!);
    const jwtAuthorities = this.journal.jwt.map((a) => ({
      kid: a.id,
      publicKey: createPublicKey(a.publicKeyPem),
      expiresAtMs: a.notAfterMs,
    }));
    const stored = await store.fetchBundle(trustDomain.name);
    const previous = stored ? parseSpiffeBundle(stored.bundleJson, trustDomain) : null;
    const candidate = createTrustBundle({
      trustDomain,
      x509Authorities,
      jwtAuthorities,
      sequence: previous?.sequence ?? 0,
      refreshHintS: BUNDLE_REFRESH_HINT_S,
    });
    const unchanged = previous !== null && encodeSpiffeBundle(previous) === encodeSpiffeBundle(candidate);
    const next = unchanged
      ? previous
      : createTrustBundle({ ...candidate, sequence: (previous?.sequence ?? 0) + 1 });
    this.currentBundle = next;
    // Written even when unchanged: the write is what tells agent streams to look again (a taint
    // changes no certificate, yet agents must hear of it).
    await store.putBundle({
      trustDomain: trustDomain.name,
      bundleJson: encodeSpiffeBundle(next),
      sequence: next.sequence,
      updatedAtMs: clock.nowMs(),
    });
  }

  /** Sleeps until the earliest next rotation step of either kind. */
  private arm(): void {
    const nowMs = this.options.clock.nowMs();
    let nextMs = Number.POSITIVE_INFINITY;
    for (const kind of KINDS) {
      const opts = this.rotationOptions(kind);
      const list = this.list(kind);
      const active = inState(list, 'active');
      const prepared = inState(list, 'prepared');
      if (active) {
        const schedule = authoritySchedule(times(active), opts, prepared && times(prepared));
        nextMs = Math.min(
          nextMs,
          prepared ? schedule.activateNextAtMs : schedule.prepareNextAtMs,
          active.notAfterMs,
        );
      }
      for (const old of list.filter((a) => a.state === 'old' && !a.tainted)) {
        nextMs = Math.min(nextMs, authoritySchedule(times(old), opts).pruneAtMs);
      }
    }
    if (!Number.isFinite(nextMs)) return;
    this.scheduler.schedule('rotate', Math.max(nextMs, nowMs + MIN_WAKE_MS), () =>
      this.exclusive(() => this.rotate()),
    );
  }

  private create(kind: AuthorityKind, nowMs: number): Promise<AuthorityRecord> {
    const made =
      kind === 'x509' ? createX509Authority(this.options, nowMs) : createJwtAuthority(this.options, nowMs);
    return made.then((record) => ({ ...record, preparedAtMs: nowMs }));
  }

  private async removeKey(record: AuthorityRecord): Promise<void> {
    await rm(path.join(this.options.keysDir, record.keyFile), { force: true });
  }

  private list(kind: AuthorityKind): readonly AuthorityRecord[] {
    return this.journal[kind];
  }

  private find(kind: AuthorityKind, id: string): AuthorityRecord {
    const found = this.list(kind).find((a) => a.id === id);
    if (!found)
      throw new SigilError(
        'ERR_AUTHORITY_NOT_FOUND',
        `no ${kind} authority ${quote(id)} (see "localauthority show")`,
        { field: 'id' },
      );
    return found;
  }

  private rotationOptions(kind: AuthorityKind): RotationOptions {
    return kind === 'jwt'
      ? { ...this.options.rotation, ...this.options.jwtRotation }
      : (this.options.rotation ?? {});
  }

  private view(kind: AuthorityKind, a: AuthorityRecord): AuthorityView {
    const list = this.list(kind);
    const opts = this.rotationOptions(kind);
    let nextEvent: string | null = null;
    let nextEventAtMs: number | null = null;
    if (a.state === 'prepared') {
      const active = inState(list, 'active');
      if (active)
        [nextEvent, nextEventAtMs] = [
          'activate',
          authoritySchedule(times(active), opts, times(a)).activateNextAtMs,
        ];
    } else if (a.state === 'active') {
      [nextEvent, nextEventAtMs] = inState(list, 'prepared')
        ? ['retire', authoritySchedule(times(a), opts, times(inState(list, 'prepared')!)).activateNextAtMs]
        : ['prepare successor', authoritySchedule(times(a), opts).prepareNextAtMs];
    } else if (!a.tainted) {
      [nextEvent, nextEventAtMs] = ['prune', authoritySchedule(times(a), opts).pruneAtMs];
    }
    return {
      id: a.id,
      state: a.state,
      tainted: a.tainted ?? false,
      notAfterMs: a.notAfterMs,
      createdAtMs: a.createdAtMs,
      publishedAtMs: a.preparedAtMs ?? null,
      activatedAtMs: a.activatedAtMs ?? null,
      nextEvent,
      nextEventAtMs,
    };
  }

  /** Runs rotation steps one at a time: the scheduler and operators never interleave writes. */
  private exclusive<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(step, step);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function times(a: AuthorityRecord): AuthorityTimes {
  return {
    notBeforeMs: a.createdAtMs,
    notAfterMs: a.notAfterMs,
    state: a.state,
    ...(a.preparedAtMs !== undefined ? { preparedAtMs: a.preparedAtMs } : {}),
    ...(a.activatedAtMs !== undefined ? { activatedAtMs: a.activatedAtMs } : {}),
    ...(a.lastSignedExpiresAtMs !== undefined ? { lastSignedExpiresAtMs: a.lastSignedExpiresAtMs } : {}),
  };
}
