// The manager's cache as it is kept on disk between runs (svid-store.ts writes it): the authorized
// entries as last synced with their revision, the bundles, and the workload X.509-SVIDs with their
// private keys. Encoding and checking only, no I/O. The file is ours, but a disk can corrupt it and
// a crash can cut it short, so decoding trusts nothing: any malformed part refuses the whole file
// (the agent then starts empty, as before), and SVIDs that expired, or whose key does not match
// their leaf, are dropped one by one. JWT-SVIDs are not kept: they are minted on demand.
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { encodeSpiffeBundle, parseSpiffeBundle, type TrustBundle } from '../../spiffe/bundle.js';
import { SigilError } from '../../spiffe/errors.js';
import { parseTrustDomain, type TrustDomain } from '../../spiffe/id.js';
import { makeSelector } from '../../spiffe/selector.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { AgentEntry } from './types.js';

/** Bumped when the layout changes; a file of another version is ignored, never misread. */
export const PERSISTED_CACHE_VERSION = 1;

export interface PersistedSvid {
  readonly entryId: string;
  /** svidFieldsKey of the entry it was minted for (the entry may have changed since). */
  readonly fieldsKey: string;
  readonly spiffeId: string;
  /** DER, leaf first. */
  readonly chain: readonly Buffer[];
  readonly key: KeyObject;
  /** Drawn once at mint (jitter included) and kept, so a restart does not re-draw it. */
  readonly renewAtMs: number;
}

export interface PersistedCache {
  /** The agent the entries were authorized for: another agent's cache is not ours to serve. */
  readonly agentId: string;
  readonly revision: number;
  readonly bundle: TrustBundle;
  readonly federatedBundles: ReadonlyMap<string, TrustBundle>;
  /** Subject key IDs (hex) of tainted X.509 authorities. */
  readonly taintedAuthorities: readonly string[];
  readonly entries: readonly AgentEntry[];
  /** In least-recently-used order. */
  readonly svids: readonly PersistedSvid[];
}

export interface DecodeOptions {
  readonly trustDomain: TrustDomain;
  readonly nowMs: number;
  /** At most this many SVIDs are kept (the most recently used); the rest are minted again. */
  readonly maxSvids: number;
}

export interface DecodedCache {
  readonly cache: PersistedCache;
  /** SVIDs dropped because they had expired. */
  readonly expired: number;
  /** SVIDs dropped for another reason: no entry, key not matching the leaf, beyond maxSvids. */
  readonly dropped: number;
}

export function encodePersistedCache(cache: PersistedCache): string {
  const federated: Record<string, string> = {};
  for (const [name, bundle] of cache.federatedBundles) federated[name] = encodeSpiffeBundle(bundle);
  return JSON.stringify({
    version: PERSISTED_CACHE_VERSION,
    agent_id: cache.agentId,
    revision: cache.revision,
    bundle: encodeSpiffeBundle(cache.bundle),
    federated_bundles: federated,
    tainted_authorities: cache.taintedAuthorities,
    entries: cache.entries,
    svids: cache.svids.map((svid) => ({
      entry_id: svid.entryId,
      fields_key: svid.fieldsKey,
      spiffe_id: svid.spiffeId,
      chain: svid.chain.map((der) => der.toString('base64')),
      key: (svid.key.export({ type: 'pkcs8', format: 'der' }) as Buffer).toString('base64'),
      renew_at_ms: svid.renewAtMs,
    })),
  });
}

/**
 * Reads a cache written by encodePersistedCache. Throws ERR_INPUT_INVALID (reason `persisted-cache`)
 * naming the first problem; the message never quotes the file's content, which holds private keys.
 */
export function decodePersistedCache(text: string, options: DecodeOptions): DecodedCache {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text around the error, which may be key material: say only that it failed.
    throw invalid('is not valid JSON (cut short or corrupted)');
  }
  const doc = record(raw, 'the top level');
  if (doc.version !== PERSISTED_CACHE_VERSION) {
    throw invalid(`has version ${JSON.stringify(doc.version)}, not ${PERSISTED_CACHE_VERSION}`);
  }
  const agentId = str(doc.agent_id, 'agent_id');
  const revision = count(doc.revision, 'revision');
  const bundle = parseSpiffeBundle(str(doc.bundle, 'bundle'), options.trustDomain);
  const federatedBundles = new Map<string, TrustBundle>();
  for (const [name, json] of Object.entries(record(doc.federated_bundles, 'federated_bundles'))) {
    federatedBundles.set(
      name,
      parseSpiffeBundle(str(json, `federated_bundles.${name}`), parseTrustDomain(name)),
    );
  }
  const taintedAuthorities = list(doc.tainted_authorities, 'tainted_authorities').map((v, i) =>
    str(v, `tainted_authorities[${i}]`),
  );
  const entries = list(doc.entries, 'entries').map((v, i) => decodeEntry(v, `entries[${i}]`));
  const entryById = new Map(entries.map((e) => [e.id, e] as const));
  const rawSvids = list(doc.svids, 'svids');
  let expired = 0;
  let dropped = 0;
  const svids: PersistedSvid[] = [];
  // The end of the list is the most recently used: keep from there.
  for (let i = rawSvids.length - 1; i >= 0; i--) {
    const svid = decodeSvid(rawSvids[i], `svids[${i}]`);
    const leaf = describeCertificate(svid.chain[0]!);
    if (leaf.notAfterMs <= options.nowMs) expired++;
    else if (
      svids.length >= options.maxSvids ||
      !entryById.has(svid.entryId) ||
      !isConsistent(svid, leaf.spiffeId)
    )
      dropped++;
    else svids.push(svid);
  }
  svids.reverse();
  return {
    cache: { agentId, revision, bundle, federatedBundles, taintedAuthorities, entries, svids },
    expired,
    dropped,
  };
}

/** The leaf names the SPIFFE ID recorded with it and carries the public half of the recorded key. */
function isConsistent(svid: PersistedSvid, leafSpiffeId: string | null): boolean {
  if (leafSpiffeId !== svid.spiffeId) return false;
  const leafSpki = new X509Certificate(svid.chain[0]!).publicKey.export({ type: 'spki', format: 'der' });
  return leafSpki.equals(createPublicKey(svid.key).export({ type: 'spki', format: 'der' }));
}

function decodeSvid(value: unknown, at: string): PersistedSvid {
  const doc = record(value, at);
  const chain = list(doc.chain, `${at}.chain`).map((c, i) => base64(c, `${at}.chain[${i}]`));
  if (chain.length === 0) throw invalid(`${at}.chain: is empty`);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: base64(doc.key, `${at}.key`), format: 'der', type: 'pkcs8' });
  } catch {
    // The reason node:crypto gives is about the key's bytes; the place is enough.
    throw invalid(`${at}.key: is not a PKCS#8 private key`);
  }
  return {
    entryId: str(doc.entry_id, `${at}.entry_id`),
    fieldsKey: str(doc.fields_key, `${at}.fields_key`),
    spiffeId: str(doc.spiffe_id, `${at}.spiffe_id`),
    chain,
    key,
    renewAtMs: count(doc.renew_at_ms, `${at}.renew_at_ms`),
  };
}

function decodeEntry(value: unknown, at: string): AgentEntry {
  const doc = record(value, at);
  const strings = (v: unknown, field: string) =>
    list(v, `${at}.${field}`).map((s, i) => str(s, `${at}.${field}[${i}]`));
  const selectors = list(doc.selectors, `${at}.selectors`).map((s, i) => {
    const selector = record(s, `${at}.selectors[${i}]`);
    return makeSelector(selector.type as string, selector.value as string, `${at}.selectors[${i}]`);
  });
  if (doc.expiresAtMs !== null) count(doc.expiresAtMs, `${at}.expiresAtMs`);
  return Object.freeze({
    id: str(doc.id, `${at}.id`),
    spiffeId: str(doc.spiffeId, `${at}.spiffeId`),
    parentId: str(doc.parentId, `${at}.parentId`),
    selectors: Object.freeze(selectors),
    x509SvidTtlMs: count(doc.x509SvidTtlMs, `${at}.x509SvidTtlMs`),
    jwtSvidTtlMs: count(doc.jwtSvidTtlMs, `${at}.jwtSvidTtlMs`),
    dnsNames: Object.freeze(strings(doc.dnsNames, 'dnsNames')),
    federatesWith: Object.freeze(strings(doc.federatesWith, 'federatesWith')),
    admin: flag(doc.admin, `${at}.admin`),
    downstream: flag(doc.downstream, `${at}.downstream`),
    hint: str(doc.hint, `${at}.hint`),
    expiresAtMs: doc.expiresAtMs as number | null,
    revision: count(doc.revision, `${at}.revision`),
  });
}

function record(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(`${at}: is not an object`);
  return value as Record<string, unknown>;
}

function list(value: unknown, at: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(`${at}: is not a list`);
  return value;
}

function str(value: unknown, at: string): string {
  if (typeof value !== 'string') throw invalid(`${at}: is not a string`);
  return value;
}

function count(value: unknown, at: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`${at}: is not a whole number ≥ 0`);
  }
  return value;
}

function flag(value: unknown, at: string): boolean {
  if (typeof value !== 'boolean') throw invalid(`${at}: is not true or false`);
  return value;
}

function base64(value: unknown, at: string): Buffer {
  const encoded = str(value, at);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) throw invalid(`${at}: is not base64`);
  return Buffer.from(encoded, 'base64');
}

function invalid(problem: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `workload SVID cache: ${problem}`, {
    reason: 'persisted-cache',
  });
}
