// One SignX509Svids round trip: a key and CSR per entry, one signer call, and a check of every leaf
// before it is trusted. A leaf that names another SPIFFE ID or carries another key is refused: the
// server (or something between) is wrong, and handing it to a workload would break it or worse.
import { X509Certificate } from 'node:crypto';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import { createSvidKeyRequest, type SvidKeyRequest } from './csr.js';
import { svidFieldsKey } from './renewal.js';
import { type CachedSvid, findAnchor, topIssuerOf } from './svid-cache.js';
import type { AgentEntry, SignedSvid, SvidSigner } from './types.js';

export interface MintedSvid {
  readonly chain: readonly Buffer[];
  readonly key: SvidKeyRequest['key'];
  readonly notBeforeMs: number;
  readonly expiresAtMs: number;
  readonly serialHex: string;
  readonly topIssuer: string;
  readonly anchor: string | undefined;
}

export type MintOutcome =
  | { readonly entry: AgentEntry; readonly ok: true; readonly svid: MintedSvid }
  | { readonly entry: AgentEntry; readonly ok: false; readonly reason: string };

/**
 * Mints SVIDs for `entries` in one signer call. Throws what the signer throws (the whole call failed);
 * per-entry problems come back as `ok: false` outcomes, in `entries` order.
 */
export async function mintSvids(
  signer: SvidSigner,
  entries: readonly AgentEntry[],
  authorities: readonly Buffer[],
): Promise<MintOutcome[]> {
  const requests = entries.map(() => createSvidKeyRequest());
  const results = await signer.signX509Svids(
    entries.map((entry, i) => ({ entryId: entry.id, csr: requests[i]!.csr })),
  );
  // Matched by id, not position: a signer that drops or reorders results must not cross-wire keys.
  const byId = new Map(results.map((r) => [r.entryId, r] as const));
  return entries.map((entry, i) => checkSigned(entry, requests[i]!, byId.get(entry.id), authorities));
}

function checkSigned(
  entry: AgentEntry,
  request: SvidKeyRequest,
  signed: SignedSvid | undefined,
  authorities: readonly Buffer[],
): MintOutcome {
  const fail = (reason: string): MintOutcome => ({ entry, ok: false, reason });
  if (signed === undefined) return fail('the signer returned no result for this entry');
  if (signed.error !== undefined) return fail(`the signer refused: ${signed.error}`);
  const chain = signed.chain ?? [];
  if (chain.length === 0) return fail('the signer returned an empty chain');
  try {
    const leaf = describeCertificate(chain[0]!);
    if (leaf.spiffeId !== entry.spiffeId) {
      return fail(
        `leaf SPIFFE ID ${JSON.stringify(leaf.spiffeId)} is not the entry's ${JSON.stringify(entry.spiffeId)}`,
      );
    }
    const leafSpki = new X509Certificate(chain[0]!).publicKey.export({ type: 'spki', format: 'der' });
    if (!leafSpki.equals(request.spkiDer)) return fail('leaf public key is not the key this agent generated');
    return {
      entry,
      ok: true,
      svid: {
        chain: Object.freeze([...chain]),
        key: request.key,
        notBeforeMs: leaf.notBeforeMs,
        expiresAtMs: leaf.notAfterMs,
        serialHex: leaf.serialHex,
        topIssuer: topIssuerOf(chain),
        anchor: findAnchor(chain, authorities),
      },
    };
  } catch (err) {
    return fail(`the returned chain is unreadable: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The cache record for a freshly minted SVID; `renewAt` draws the renewal time once, now. */
export function toCachedSvid(
  entry: AgentEntry,
  minted: MintedSvid,
  renewAt: (svid: MintedSvid) => number,
): CachedSvid {
  return {
    entryId: entry.id,
    fieldsKey: svidFieldsKey(entry),
    spiffeId: entry.spiffeId,
    chain: minted.chain,
    key: minted.key,
    notBeforeMs: minted.notBeforeMs,
    expiresAtMs: minted.expiresAtMs,
    renewAtMs: renewAt(minted),
    serialHex: minted.serialHex,
    topIssuer: minted.topIssuer,
    anchor: minted.anchor,
    view: Object.freeze({
      spiffeId: entry.spiffeId,
      chain: minted.chain,
      key: minted.key,
      hint: entry.hint,
      expiresAtMs: minted.expiresAtMs,
    }),
  };
}
