// Test support for the proxy: throwaway trust domains minting real X509-SVIDs, a fake X509Source
// that tests push rotations into, and a logger that records what it was told.
import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createTrustBundle, type TrustBundle } from '../spiffe/bundle.js';
import { systemClock } from '../spiffe/clock.js';
import { parseSpiffeId, parseTrustDomain } from '../spiffe/id.js';
import { generateKey } from '../spiffe/keys.js';
import { createCaCertificate } from '../spiffe/x509-authority.js';
import { mintX509Svid, prepareIssuer } from '../spiffe/x509-svid.js';
import type { IdentitySource } from './identity.js';
import type { ProxyLogger } from './logger.js';

const HOUR_MS = 3_600_000;

export interface TestSvid {
  readonly spiffeId: { toString(): string };
  readonly certificates: readonly Buffer[];
  readonly privateKey: KeyObject;
}

export interface TestTrustDomain {
  readonly name: string;
  readonly bundle: TrustBundle;
  /** A leaf for spiffe://<name><path>; by default valid from 10s ago for an hour. */
  mint(path: string, validity?: { notBeforeMs: number; notAfterMs: number }): TestSvid;
}

export async function makeTrustDomain(name: string): Promise<TestTrustDomain> {
  const nowMs = systemClock.nowMs();
  const trustDomain = parseTrustDomain(name);
  const caKey = generateKey('ec-p256');
  const caDer = await createCaCertificate({
    trustDomain,
    key: caKey,
    notBeforeMs: nowMs - 2 * HOUR_MS,
    notAfterMs: nowMs + 24 * HOUR_MS,
  });
  const issuer = prepareIssuer(caDer, caKey);
  return {
    name,
    bundle: createTrustBundle({ trustDomain, x509Authorities: [caDer] }),
    mint(path, validity) {
      const at = systemClock.nowMs();
      const privateKey = generateKey('ec-p256');
      const spiffeId = parseSpiffeId(`spiffe://${name}${path}`);
      const leaf = mintX509Svid(
        {
          spiffeId,
          publicKey: privateKey,
          notBeforeMs: validity?.notBeforeMs ?? at - 10_000,
          notAfterMs: validity?.notAfterMs ?? at + HOUR_MS,
        },
        issuer,
      );
      return { spiffeId, certificates: [leaf], privateKey };
    },
  };
}

/** An X509Source stand-in: `push` replaces the SVID (and optionally the bundles) and emits `update`. */
export class FakeSource extends EventEmitter implements IdentitySource {
  constructor(
    private svid: TestSvid,
    private bundles: ReadonlyMap<string, TrustBundle>,
  ) {
    super();
  }

  getSvid(): TestSvid {
    return this.svid;
  }

  getContext(): { bundles: ReadonlyMap<string, TrustBundle> } {
    return { bundles: this.bundles };
  }

  push(svid: TestSvid, bundles?: ReadonlyMap<string, TrustBundle>): void {
    this.svid = svid;
    if (bundles !== undefined) this.bundles = bundles;
    this.emit('update');
  }
}

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

export class RecordingLogger implements ProxyLogger {
  readonly entries: LogEntry[] = [];
  debug(fields: object, message: string): void {
    this.entries.push({ level: 'debug', message, fields: fields as Record<string, unknown> });
  }
  info(fields: object, message: string): void {
    this.entries.push({ level: 'info', message, fields: fields as Record<string, unknown> });
  }
  warn(fields: object, message: string): void {
    this.entries.push({ level: 'warn', message, fields: fields as Record<string, unknown> });
  }
  error(fields: object, message: string): void {
    this.entries.push({ level: 'error', message, fields: fields as Record<string, unknown> });
  }
  find(message: string): LogEntry[] {
    return this.entries.filter((e) => e.message === message);
  }
}
