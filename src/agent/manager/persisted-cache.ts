// The manager's cache as it is kept on disk between runs (svid-store.ts writes it): the authorized
// entries as last synced with their revision, the bundles, and the workload X.509-SVIDs with their
// private keys. Encoding and checking only, no I/O. The file is ours, but a disk can corrupt it and
// a crash can cut it short, so decoding trusts nothing: any malformed part refuses the whole file
// (the agent then starts empty, as before), and SVIDs that expired, or whose key does not match
// their leaf, are dropped one by one. JWT-SVIDs are not kept: they are minted on demand.
import { createECDH, createPrivateKey, type KeyObject } from 'node:crypto';
import { encodeSpiffeBundle, parseSpiffeBundle, type TrustBundle } from '../../spiffe/bundle.js';
import { SigilError } from '../../spiffe/errors.js';
import { parseTrustDomain, type TrustDomain } from '../../spiffe/id.js';
import { makeSelector } from '../../spiffe/selector.js';
import {
  OID_SUBJECT_ALT_NAME,
  parseCertificate,
  spkiKeyBits,
  subjectAltNames,
} from '../../spiffe/x509-certificate.js';
import { topIssuerOf } from './svid-cache.js';
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
  /** P-256, the only SVID key type the agent generates (csr.ts). */
  readonly key: KeyObject;
  /** Drawn once at mint (jitter included) and kept, so a restart does not re-draw it. */
  readonly renewAtMs: number;
  // Read from the chain, never stored: decoding has parsed it already, restoring need not again.
  readonly notBeforeMs: number;
  readonly expiresAtMs: number;
  readonly serialHex: string;
  /** svid-cache.ts topIssuerOf of the chain. */
  readonly topIssuer: string;
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
      // The private scalar alone: the public point is derived from it on load, so the two cannot
      // disagree, and importing a JWK is 5x cheaper than a PKCS#8 DER (~70 µs vs ~360 µs, Node 20).
      key: svid.key.export({ format: 'jwk' }).d,
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
    const at = `svids[${i}]`;
    const raw = record(rawSvids[i], at);
    const chain = list(raw.chain, `${at}.chain`).map((c, j) => base64(c, `${at}.chain[${j}]`));
    if (chain.length === 0) throw invalid(`${at}.chain: is empty`);
    const leaf = parseCertificate(chain[0]!);
    if (leaf.notAfterMs <= options.nowMs) expired++;
    else if (svids.length >= options.maxSvids || !entryById.has(str(raw.entry_id, `${at}.entry_id`)))
      dropped++;
    else {
      // Keys are imported only now: SVIDs dropped anyway cost nothing.
      const svid = decodeSvid(raw, chain, leaf, at);
      if (svid === undefined) dropped++;
      else svids.push(svid);
    }
  }
  svids.reverse();
  return {
    cache: { agentId, revision, bundle, federatedBundles, taintedAuthorities, entries, svids },
    expired,
    dropped,
  };
}

/**
 * The SVID, or undefined when its parts do not hang together (the leaf names another SPIFFE ID, or
 * does not carry the public half of the key): such an SVID would fail every handshake it is used in.
 */
function decodeSvid(
  raw: Record<string, unknown>,
  chain: Buffer[],
  leaf: ReturnType<typeof parseCertificate>,
  at: string,
): PersistedSvid | undefined {
  const spiffeId = str(raw.spiffe_id, `${at}.spiffe_id`);
  const san = leaf.extensions.get(OID_SUBJECT_ALT_NAME);
  if (san === undefined || subjectAltNames(san.value).uris[0] !== spiffeId) return undefined;
  const scalar = base64url(raw.key, `${at}.key`);
  let point: Buffer;
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(scalar);
    point = ecdh.getPublicKey();
  } catch {
    // node:crypto's reason is about the key's bytes; the place is enough.
    throw invalid(`${at}.key: is not a P-256 private key`);
  }
  if (!spkiKeyBits(leaf.spkiDer).equals(point)) return undefined;
  const key = createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: scalar.toString('base64url'),
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33).toString('base64url'),
    },
    format: 'jwk',
  });
  return {
    entryId: str(raw.entry_id, `${at}.entry_id`),
    fieldsKey: str(raw.fields_key, `${at}.fields_key`),
    spiffeId,
    chain,
    key,
    renewAtMs: count(raw.renew_at_ms, `${at}.renew_at_ms`),
    notBeforeMs: leaf.notBeforeMs,
    expiresAtMs: leaf.notAfterMs,
    serialHex: leaf.serialHex,
    topIssuer: topIssuerOf(chain),
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

function base64url(value: unknown, at: string): Buffer {
  const encoded = str(value, at);
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) throw invalid(`${at}: is not base64url`);
  return Buffer.from(encoded, 'base64url');
}

function invalid(problem: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `workload SVID cache: ${problem}`, {
    reason: 'persisted-cache',
  });
}
