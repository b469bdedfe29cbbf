// The CA's current journal and what follows from it: the active signers and the published bundle.
// A journal is adopted only once the store has it (built as a value, saved, then assigned), and the
// signers it names are loaded before the save, so the switch follows the save with no await between
// and nothing is signed under a retiring authority after its last-signed expiry was recorded.
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { TrustBundle } from '../../spiffe/bundle.js';
import { decodePemBlocks } from '../../spiffe/pem.js';
import type { JournalStore } from '../datastore/types.js';
import { type BundlePublisherOptions, publishBundle } from './ca-bundle.js';
import { type CaJournal, EMPTY_JOURNAL, parseJournal } from './journal.js';
import type { RotationPlan } from './journal-steps.js';
import { removeDroppedKeys, removeOrphanKeys } from './key-files.js';
import { loadSigners, type SignerLoaderOptions } from './signer-loader.js';
import type { SvidSigner } from './svid-signer.js';

export interface CaStateOptions extends SignerLoaderOptions, BundlePublisherOptions {
  readonly store: JournalStore & BundlePublisherOptions['store'];
  readonly logger: Logger;
}

export class CaState {
  private current: CaJournal = EMPTY_JOURNAL;
  private version = 0;
  private published!: TrustBundle;
  /** A saved journal whose bundle is not published yet (the publish failed): retried first. */
  private unpublished = false;
  private certificates: { journal: CaJournal; certificates: readonly X509Certificate[] } | undefined;

  constructor(
    private readonly options: CaStateOptions,
    private readonly signer: SvidSigner,
    /** Called whenever the active signers change. */
    private readonly onSigners: () => void,
  ) {}

  get journal(): CaJournal {
    return this.current;
  }

  /** The journal's X.509 authority certificates, parsed once per journal. */
  x509Certificates(): readonly X509Certificate[] {
    if (this.certificates?.journal !== this.current) {
      const certificates = this.current.x509.map(
        (a) => new X509Certificate(decodePemBlocks(a.certPem, 'CERTIFICATE', 'ca journal')[0]!),
      );
      this.certificates = { journal: this.current, certificates };
    }
    return this.certificates.certificates;
  }

  get bundle(): TrustBundle {
    return this.published;
  }

  get pendingPublish(): boolean {
    return this.unpublished;
  }

  /**
   * Reads the stored journal and removes CA key files it does not name. Only when one was stored:
   * an unreadable journal must never cost a key, and an empty store (a wrong datastore setting, say)
   * must not wipe the keys of the journal it should have had.
   */
  async load(): Promise<void> {
    const stored = await this.options.store.loadJournal();
    this.current = stored ? parseJournal(stored.data) : EMPTY_JOURNAL;
    this.version = stored?.version ?? 0;
    if (stored) await removeOrphanKeys(this.options.keysDir, this.current, this.options.logger);
  }

  /** Signs with what the current journal names (at start, when no rotation step changed it). */
  async useCurrent(): Promise<void> {
    this.signer.use(await loadSigners(this.options, this.current));
    this.unpublished = true;
    this.onSigners();
  }

  /** Journal first, then signers and bundle: what agents see is always recoverable from the store. */
  async saveAndAdopt({ next, changes, activated }: RotationPlan): Promise<void> {
    const signers = await loadSigners(this.options, next);
    const saved = await this.options.store.saveJournal(JSON.stringify(next), this.version);
    const before = this.current;
    this.current = next;
    this.version = saved.version;
    this.unpublished = true;
    // Activated by this process: from now on every expiry it signs is tracked exactly.
    for (const id of activated) this.signer.track(id);
    this.signer.use(signers);
    this.onSigners();
    for (const { kind, change } of changes) this.options.logger.info({ kind, change }, 'Authority rotation');
    await removeDroppedKeys(this.options.keysDir, before, next, this.options.logger);
    await this.publish();
  }

  /**
   * After a failure: re-reads the journal when the store moved on without us (a save that failed
   * after committing), and removes keys made for attempts that were never saved.
   */
  async reload(): Promise<void> {
    const stored = await this.options.store.loadJournal();
    // A journal gone from the store is no reason to delete keys: leave that to the operator.
    if (!stored) return;
    const journal = parseJournal(stored.data);
    await removeOrphanKeys(this.options.keysDir, journal, this.options.logger);
    if (stored.version === this.version) return;
    const signers = await loadSigners(this.options, journal);
    this.current = journal;
    this.version = stored.version;
    this.signer.use(signers);
    this.onSigners();
    this.unpublished = true;
    this.options.logger.warn({ version: stored.version }, 'CA journal reloaded from the store');
  }

  async publish(): Promise<void> {
    await publishBundle(this.options, this.current, (bundle) => {
      this.published = bundle;
    });
    this.unpublished = false;
  }
}
