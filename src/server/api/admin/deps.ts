// What the admin API needs from the rest of the server, declared here beside its consumer so the
// routes can be driven in tests with app.inject() and a real store, without a running server.
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TrustBundle } from '../../../spiffe/bundle.js';
import type { Clock } from '../../../spiffe/clock.js';
import type { SpiffeId, TrustDomain } from '../../../spiffe/id.js';
import type { AuthorizedEntries } from '../../authorized-entries/index.js';
import type { IssuedX509Svid } from '../../ca/svid-signer.js';
import type { DataStore } from '../../datastore/types.js';
import type { ServerMetrics } from '../../metrics.js';

/**
 * The CA's workload signing surface: every method refuses Sigil's reserved /sigil namespace. The
 * server's and agents' own SVIDs are deliberately not part of it.
 */
export interface AdminCa {
  readonly trustDomain: TrustDomain;
  bundle(): TrustBundle;
  signX509Svid(params: {
    spiffeId: SpiffeId;
    publicKey: KeyObject | Buffer;
    dnsNames?: readonly string[];
    ttlMs?: number;
  }): IssuedX509Svid;
  signCsr(params: {
    csr: Buffer | string;
    spiffeId: SpiffeId;
    dnsNames?: readonly string[];
    ttlMs?: number;
  }): IssuedX509Svid;
  mintJwtSvid(params: { spiffeId: SpiffeId; audience: readonly string[]; ttlMs?: number }): {
    token: string;
    expiresAtMs: number;
  };
}

export type AuthorityKind = 'x509' | 'jwt';

/** One signing authority as operators see it. */
export interface AuthorityView {
  readonly id: string;
  readonly state: 'prepared' | 'active' | 'old';
  readonly tainted: boolean;
  readonly notAfterMs: number;
  readonly createdAtMs: number;
  readonly publishedAtMs: number | null;
  readonly activatedAtMs: number | null;
  /** What rotation does to it next ("activate", "retire", "prune") and when; null when nothing is scheduled. */
  readonly nextEvent: string | null;
  readonly nextEventAtMs: number | null;
  /** A prepared authority: from when activating it cannot break consumers (published for the publish lead). */
  readonly safeToActivateAtMs: number | null;
  /** An old X.509 authority: what still chains to it; null for other authorities. */
  readonly dependents: AuthorityDependents | null;
}

/** What still depends on an old X.509 authority: revoking it while any does locks them out. */
export interface AuthorityDependents {
  /** Live (not banned, unexpired) agents whose current SVID it signed. */
  readonly agents: number;
  /** Live agents whose SVID's issuer was not recorded (renewed before this server version). */
  readonly unknownAgents: number;
  /** Whether the server's own current SVID chains to it. */
  readonly serverSvid: boolean;
}

/** Operator overrides of a safety check, logged at warn with what they risk. */
export interface ForceOption {
  readonly force?: boolean;
}

/** The CA's rotation controls, for operators. */
export interface AuthorityControls {
  authorities(): Promise<{ x509: AuthorityView[]; jwt: AuthorityView[] }>;
  prepare(kind: AuthorityKind): Promise<AuthorityView>;
  /** Refused (ERR_AUTHORITY_STATE) before the prepared authority's publish lead, unless forced. */
  activate(kind: AuthorityKind, options?: ForceOption): Promise<AuthorityView>;
  taint(kind: AuthorityKind, id: string): Promise<AuthorityView>;
  /** Refused (ERR_AUTHORITY_STATE) while live credentials chain to the authority, unless forced. */
  revoke(kind: AuthorityKind, id: string, options?: ForceOption): Promise<AuthorityView>;
}

export interface AdminDeps {
  readonly store: DataStore;
  readonly ca: AdminCa & AuthorityControls;
  /** What each agent is authorized for, for `entry explain`. */
  readonly index: Pick<AuthorizedEntries, 'explain' | 'aliasesOf'>;
  readonly clock: Clock;
  /** Shortest SVID lifetime an entry or a mint request may ask for (config min_svid_ttl). */
  readonly minSvidTtlMs: number;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  readonly registry: Registry;
  /** True when the server can serve: datastore answering, CA loaded. */
  isReady(): Promise<boolean>;
}
