// The server's certificate authority: loads or creates the X.509 signing CA and the JWT signing key,
// journals them in the datastore, publishes the trust bundle, and mints SVIDs. Keys never leave the
// keys directory (0600 files); the journal holds only public parts. Scheduled rotation of these
// authorities belongs to src/rotation and is driven from outside; this class only acts.
import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  createTrustBundle,
  encodeSpiffeBundle,
  parseSpiffeBundle,
  type TrustBundle,
} from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import type { SpiffeId, TrustDomain } from '../../spiffe/id.js';
import { mintJwtSvid } from '../../spiffe/jwt-svid.js';
import { generateKey, type KeyType } from '../../spiffe/keys.js';
import { decodePemBlocks, encodePem } from '../../spiffe/pem.js';
import { readPrivateKeyFile, writePrivateKeyFile } from '../../spiffe/secret-file.js';
import { certificateMatchesKey, createCaCertificate } from '../../spiffe/x509-authority.js';
import {
  describeCertificate,
  mintX509Svid,
  parseCsr,
  prepareIssuer,
  type X509Issuer,
} from '../../spiffe/x509-svid.js';
import type { BundleStore, JournalStore } from '../datastore/types.js';
import {
  activeJwt,
  activeX509,
  type CaJournal,
  EMPTY_JOURNAL,
  type JwtAuthorityRecord,
  parseJournal,
  type X509AuthorityRecord,
} from './journal.js';
import type { UpstreamAuthority } from './upstream.js';

/** Backdate 10s: a peer whose clock runs a little slow would reject a cert from "the future". */
export const BACKDATE_MS = 10_000;
/** How often consumers should re-fetch the bundle (SPIFFE federation default, 5 minutes). */
export const BUNDLE_REFRESH_HINT_S = 300;

export interface ServerCaOptions {
  readonly trustDomain: TrustDomain;
  readonly keyType: KeyType;
  readonly jwtKeyType: KeyType;
  readonly caTtlMs: number;
  readonly defaultX509SvidTtlMs: number;
  readonly defaultJwtSvidTtlMs: number;
  readonly upstream: UpstreamAuthority | null;
  readonly keysDir: string;
  readonly store: JournalStore & BundleStore;
  readonly clock: Clock;
  readonly logger: Logger;
}

export interface IssuedX509Svid {
  /** Leaf first, then any intermediates up to (not including) the bundle's root. */
  readonly chain: readonly Buffer[];
  readonly expiresAtMs: number;
}

interface ActiveX509 {
  readonly record: X509AuthorityRecord;
  readonly issuer: X509Issuer;
  readonly chainTail: readonly Buffer[];
}

interface ActiveJwt {
  readonly record: JwtAuthorityRecord;
  readonly key: KeyObject;
}

export class ServerCa {
  private x509!: ActiveX509;
  private jwt!: ActiveJwt;
  private currentBundle!: TrustBundle;

  private constructor(private readonly options: ServerCaOptions) {}

  /** Loads the authorities from the journal, creating what is missing or expired, then publishes the bundle. */
  static async open(options: ServerCaOptions): Promise<ServerCa> {
    const ca = new ServerCa(options);
    await ca.load();
    return ca;
  }

  get trustDomain(): TrustDomain {
    return this.options.trustDomain;
  }

  /** The trust bundle of our own trust domain, as published. */
  bundle(): TrustBundle {
    return this.currentBundle;
  }

  get x509Authority(): { readonly id: string; readonly notAfterMs: number } {
    return { id: this.x509.record.id, notAfterMs: this.x509.record.notAfterMs };
  }

  get jwtAuthority(): { readonly kid: string; readonly notAfterMs: number } {
    return { kid: this.jwt.record.kid, notAfterMs: this.jwt.record.notAfterMs };
  }

  /** Signs a leaf for `publicKey`. The TTL is capped so the SVID never outlives the signing CA. */
  signX509Svid(params: {
    spiffeId: SpiffeId;
    publicKey: KeyObject | Buffer;
    dnsNames?: readonly string[];
    ttlMs?: number;
  }): IssuedX509Svid {
    const nowMs = this.options.clock.nowMs();
    const ttlMs = params.ttlMs || this.options.defaultX509SvidTtlMs;
    const notAfterMs = Math.min(nowMs + ttlMs, this.x509.record.notAfterMs);
    const leaf = mintX509Svid(
      {
        spiffeId: params.spiffeId,
        publicKey: params.publicKey,
        dnsNames: params.dnsNames ?? [],
        notBeforeMs: nowMs - BACKDATE_MS,
        notAfterMs,
      },
      this.x509.issuer,
    );
    return { chain: [leaf, ...this.x509.chainTail], expiresAtMs: notAfterMs };
  }

  /** Verifies a PKCS#10 CSR's self-signature, then signs its key for `spiffeId` (the CSR's names are ignored). */
  signCsr(params: {
    csr: Buffer | string;
    spiffeId: SpiffeId;
    dnsNames?: readonly string[];
    ttlMs?: number;
  }): IssuedX509Svid {
    const { spkiDer } = parseCsr(params.csr);
    return this.signX509Svid({ ...params, publicKey: spkiDer });
  }

  mintJwtSvid(params: { spiffeId: SpiffeId; audience: readonly string[]; ttlMs?: number }): {
    token: string;
    expiresAtMs: number;
  } {
    const nowMs = this.options.clock.nowMs();
    const ttlMs = params.ttlMs || this.options.defaultJwtSvidTtlMs;
    const expiresAtMs = Math.min(nowMs + ttlMs, this.jwt.record.notAfterMs);
    // JWT claims are whole seconds: round down so exp never lands past the key's expiry.
    const expSecondsMs = Math.floor(expiresAtMs / 1000) * 1000;
    const token = mintJwtSvid({
      spiffeId: params.spiffeId,
      audience: params.audience,
      issuedAtMs: nowMs,
      expiresAtMs: expSecondsMs,
      key: this.jwt.key,
      kid: this.jwt.record.kid,
    });
    return { token, expiresAtMs: expSecondsMs };
  }

  private async load(): Promise<void> {
    const { store, clock, logger } = this.options;
    const stored = await store.loadJournal();
    let journal = stored ? parseJournal(stored.data) : EMPTY_JOURNAL;
    const nowMs = clock.nowMs();
    let changed = false;

    let x509Record = activeX509(journal);
    if (!x509Record || x509Record.notAfterMs <= nowMs) {
      x509Record = await this.createX509Authority(nowMs);
      journal = { ...journal, x509: [...retire(journal.x509), x509Record] };
      changed = true;
    }
    let jwtRecord = activeJwt(journal);
    if (!jwtRecord || jwtRecord.notAfterMs <= nowMs) {
      jwtRecord = await this.createJwtAuthority(nowMs);
      journal = { ...journal, jwt: [...retire(journal.jwt), jwtRecord] };
      changed = true;
    }
    // Drop authorities that expired: nothing they signed can still be valid.
    const pruned = {
      x509: journal.x509.filter((a) => a.notAfterMs > nowMs),
      jwt: journal.jwt.filter((a) => a.notAfterMs > nowMs),
    };
    changed ||= pruned.x509.length !== journal.x509.length || pruned.jwt.length !== journal.jwt.length;
    journal = pruned;
    if (changed) await store.saveJournal(JSON.stringify(journal), stored?.version ?? 0);

    this.x509 = await this.activateX509(x509Record);
    this.jwt = await this.activateJwt(jwtRecord);
    await this.publishBundle(journal);
    logger.info(
      {
        x509AuthorityId: x509Record.id,
        x509ExpiresAt: new Date(x509Record.notAfterMs).toISOString(),
        jwtKid: jwtRecord.kid,
        upstream: this.options.upstream !== null,
        created: changed,
      },
      changed ? 'Certificate authority prepared' : 'Certificate authority loaded',
    );
  }

  private async createX509Authority(nowMs: number): Promise<X509AuthorityRecord> {
    const { keyType, caTtlMs, trustDomain, upstream, keysDir } = this.options;
    const key = generateKey(keyType);
    const certDer = await createCaCertificate({
      trustDomain,
      key,
      signer: upstream ? { certDer: upstream.certDer, key: upstream.key } : undefined,
      notBeforeMs: nowMs - BACKDATE_MS,
      notAfterMs: nowMs + caTtlMs,
    });
    const described = describeCertificate(certDer);
    const id = described.subjectKeyIdHex ?? described.serialHex;
    const keyFile = `x509-ca-${id}.key`;
    // Key file before journal: the journal must never name a key that is not on disk.
    await writePrivateKeyFile(path.join(keysDir, keyFile), key);
    return {
      id,
      state: 'active',
      certPem: encodePem('CERTIFICATE', certDer),
      upstreamChainPem: (upstream?.chain ?? []).map((c) => encodePem('CERTIFICATE', c)).join(''),
      keyFile,
      notAfterMs: described.notAfterMs,
      createdAtMs: nowMs,
    };
  }

  private async createJwtAuthority(nowMs: number): Promise<JwtAuthorityRecord> {
    const key = generateKey(this.options.jwtKeyType);
    const kid = randomBytes(24).toString('base64url');
    const keyFile = `jwt-${kid}.key`;
    await writePrivateKeyFile(path.join(this.options.keysDir, keyFile), key);
    return {
      kid,
      state: 'active',
      publicKeyPem: createPublicKey(key).export({ format: 'pem', type: 'spki' }) as string,
      keyFile,
      notAfterMs: nowMs + this.options.caTtlMs,
      createdAtMs: nowMs,
    };
  }

  private async activateX509(record: X509AuthorityRecord): Promise<ActiveX509> {
    const certDer = decodePemBlocks(record.certPem, 'CERTIFICATE', 'ca journal')[0]!;
    const key = await readPrivateKeyFile(path.join(this.options.keysDir, record.keyFile));
    if (!certificateMatchesKey(certDer, key)) {
      throw new SigilError(
        'ERR_CA_UNAVAILABLE',
        `key file ${record.keyFile} does not match CA ${record.id}; restore the keys directory of this data dir`,
      );
    }
    const chainTail = record.upstreamChainPem
      ? [certDer, ...decodePemBlocks(record.upstreamChainPem, 'CERTIFICATE', 'ca journal')]
      : this.options.upstream
        ? [certDer]
        : [];
    return { record, issuer: prepareIssuer(certDer, key), chainTail };
  }

  private async activateJwt(record: JwtAuthorityRecord): Promise<ActiveJwt> {
    return { record, key: await readPrivateKeyFile(path.join(this.options.keysDir, record.keyFile)) };
  }

  /** Writes the bundle built from `journal` to the store when its content changed (sequence + 1). */
  private async publishBundle(journal: CaJournal): Promise<void> {
    const { store, trustDomain, upstream, clock } = this.options;
    const x509Authorities = upstream
      ? [...upstream.roots]
      : journal.x509.map((a) => decodePemBlocks(a.certPem, 'CERTIFICATE', 'ca journal')[0]!);
    const jwtAuthorities = journal.jwt.map((a) => ({
      kid: a.kid,
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
    if (previous && encodeSpiffeBundle(previous) === encodeSpiffeBundle(candidate)) {
      this.currentBundle = previous;
      return;
    }
    const next = createTrustBundle({ ...candidate, sequence: (previous?.sequence ?? 0) + 1 });
    await store.putBundle({
      trustDomain: trustDomain.name,
      bundleJson: encodeSpiffeBundle(next),
      sequence: next.sequence,
      updatedAtMs: clock.nowMs(),
    });
    this.currentBundle = next;
  }
}

function retire<T extends { state: string }>(records: readonly T[]): T[] {
  return records.map((r) => (r.state === 'active' ? { ...r, state: 'old' } : r));
}
