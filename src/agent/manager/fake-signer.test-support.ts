// Test support: an SvidSigner that signs CSRs with a real CA (x509-svid.ts), so the manager's leaf
// checks run against real certificates. Knobs make it fail whole calls, refuse entries or lie.
import pino from 'pino';
import { createTrustBundle, type TrustBundle } from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { parseSpiffeId, type TrustDomain } from '../../spiffe/id.js';
import { generateKey } from '../../spiffe/keys.js';
import { createCaCertificate } from '../../spiffe/x509-authority.js';
import { mintX509Svid, parseCsr, prepareIssuer, type X509Issuer } from '../../spiffe/x509-svid.js';
import type { AgentManagerOptions } from './manager-options.js';
import type { AgentEntry, SignedSvid, SvidSigner } from './types.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export class FakeSigner implements SvidSigner {
  /** Entry ids of each signX509Svids call. */
  readonly x509Calls: string[][] = [];
  readonly jwtCalls: { entryId: string; audience: readonly string[] }[] = [];
  /** When set, whole calls throw (server unreachable). */
  failing = false;
  /** Entries the server refuses, per-entry. */
  readonly refused = new Set<string>();
  /** When set, leaves name this SPIFFE ID instead of the entry's. */
  lieAboutId: string | undefined;
  x509TtlMs = 60 * 60 * 1000;
  jwtTtlMs = 5 * 60 * 1000;
  lookup: (entryId: string) => AgentEntry | undefined = () => undefined;
  private jwtSeq = 0;

  private constructor(
    private readonly clock: Clock,
    readonly trustDomain: TrustDomain,
    public caDer: Buffer,
    private issuer: X509Issuer,
  ) {}

  static async create(clock: Clock, trustDomain: TrustDomain): Promise<FakeSigner> {
    const { der, issuer } = await newCa(clock, trustDomain);
    return new FakeSigner(clock, trustDomain, der, issuer);
  }

  /** Switches to a new CA and returns its certificate. */
  async rotateCa(): Promise<Buffer> {
    const { der, issuer } = await newCa(this.clock, this.trustDomain);
    this.caDer = der;
    this.issuer = issuer;
    return der;
  }

  bundle(...authorities: Buffer[]): TrustBundle {
    return createTrustBundle({
      trustDomain: this.trustDomain,
      x509Authorities: authorities.length > 0 ? authorities : [this.caDer],
    });
  }

  async signX509Svids(requests: readonly { entryId: string; csr: Buffer }[]): Promise<SignedSvid[]> {
    this.x509Calls.push(requests.map((r) => r.entryId));
    if (this.failing) throw new SigilError('ERR_UNAVAILABLE', 'fake signer: server unreachable');
    const nowMs = this.clock.nowMs();
    return requests.map(({ entryId, csr }) => {
      const entry = this.lookup(entryId);
      if (entry === undefined || this.refused.has(entryId)) return { entryId, error: 'entry not authorized' };
      const leaf = mintX509Svid(
        {
          spiffeId: parseSpiffeId(this.lieAboutId ?? entry.spiffeId),
          publicKey: parseCsr(csr).spkiDer,
          dnsNames: entry.dnsNames,
          notBeforeMs: nowMs,
          notAfterMs: nowMs + (entry.x509SvidTtlMs || this.x509TtlMs),
        },
        this.issuer,
      );
      return { entryId, chain: [leaf], expiresAtMs: nowMs + this.x509TtlMs };
    });
  }

  async mintJwtSvid(
    entryId: string,
    audience: readonly string[],
  ): Promise<{ token: string; expiresAtMs: number }> {
    this.jwtCalls.push({ entryId, audience });
    return { token: `jwt-${entryId}-${++this.jwtSeq}`, expiresAtMs: this.clock.nowMs() + this.jwtTtlMs };
  }
}

async function newCa(clock: Clock, trustDomain: TrustDomain): Promise<{ der: Buffer; issuer: X509Issuer }> {
  const key = generateKey('ec-p256');
  const der = await createCaCertificate({
    trustDomain,
    key,
    notBeforeMs: clock.nowMs() - DAY_MS,
    notAfterMs: clock.nowMs() + 30 * DAY_MS,
  });
  return { der, issuer: prepareIssuer(der, key) };
}

/** What every manager test starts from: `signer` and its bundle, a fixed random, a silent logger. */
export function managerOptions(
  signer: FakeSigner,
  clock: Clock,
  trustDomain: TrustDomain,
  over: Partial<AgentManagerOptions> = {},
): AgentManagerOptions {
  return {
    trustDomain,
    signer,
    clock,
    random: () => 0.5,
    logger: pino({ level: 'silent' }),
    initialBundle: signer.bundle(),
    ...over,
  };
}
