// SPIFFE trust bundles (spiffe-facts.md §4): the X.509 and JWT authorities of one trust domain, read
// from and written to the SPIFFE bundle JSON (a JWK Set), PEM, the bundle map and concatenated DER.
// A bundle never mixes trust domains and never holds private keys. This module does no I/O: fetching
// and storing bundles belong to the server, agent and SDK.
import { createPublicKey, KeyObject, X509Certificate } from 'node:crypto';
import { quote, SigilError, type SigilErrorCode } from './errors.js';
import { parseTrustDomain, TrustDomain } from './id.js';
import { decodePem, encodePem } from './pem.js';

export interface JwtAuthority {
  readonly kid: string;
  readonly publicKey: KeyObject;
  /** When the key stops being used, if known. The SPIFFE bundle JSON does not carry it. */
  readonly expiresAtMs?: number;
}

export interface TrustBundle {
  readonly trustDomain: TrustDomain;
  /** DER certificates. Buffers cannot be frozen: treat them as read-only. */
  readonly x509Authorities: readonly Buffer[];
  readonly jwtAuthorities: readonly JwtAuthority[];
  /** `spiffe_sequence`; 0 means unset. */
  readonly sequence: number;
  /** `spiffe_refresh_hint` in seconds; 0 means unset. */
  readonly refreshHintS: number;
}

export interface TrustBundleFields {
  trustDomain: TrustDomain;
  x509Authorities?: readonly Uint8Array[];
  jwtAuthorities?: readonly JwtAuthority[];
  /** Defaults to 0 (unset). */
  sequence?: number;
  /** Defaults to 0 (unset). */
  refreshHintS?: number;
}

const X509_SVID_USE = 'x509-svid';
const JWT_SVID_USE = 'jwt-svid';
/** Go's encoding/json MarshalIndent as SPIRE calls it; only cosmetic, but keeps diffs against SPIRE small. */
const JSON_INDENT = 4;
/** Curves a bundle may carry, by OpenSSL name: the ones the JWT-SVID algorithms ES256/384/512 use. */
const CURVES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
};
const CURVE_BYTES: Readonly<Record<string, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BASE64_STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Members that only a private JWK has: publishing one would leak the key. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'];

/** Validates and freezes a bundle. Rejects private keys, duplicate key IDs and duplicate certificates. */
export function createTrustBundle(fields: TrustBundleFields): TrustBundle {
  if (!(fields.trustDomain instanceof TrustDomain)) {
    throw invalid('trustDomain', 'must be a parsed TrustDomain', 'trust-domain');
  }
  const certs = (fields.x509Authorities ?? []).map((der, i) => {
    const where = `x509Authorities[${i}]`;
    parseCertificate(der, where);
    // Copied so the caller's buffer cannot change the bundle behind its back.
    return Buffer.from(der);
  });
  rejectDuplicates(
    certs.map((der) => der.toString('base64')),
    (i, first) => invalid(`x509Authorities[${i}]`, `duplicates x509Authorities[${first}]`, 'duplicate-cert'),
  );
  const jwtAuthorities = (fields.jwtAuthorities ?? []).map((a, i) =>
    freezeAuthority(a, `jwtAuthorities[${i}]`),
  );
  rejectDuplicates(
    jwtAuthorities.map((a) => a.kid),
    (i, first) =>
      invalid(
        `jwtAuthorities[${i}].kid`,
        `duplicate key ID ${quote(jwtAuthorities[i]!.kid)} (also jwtAuthorities[${first}])`,
        'duplicate-kid',
      ),
  );
  return Object.freeze({
    trustDomain: fields.trustDomain,
    x509Authorities: Object.freeze(certs),
    jwtAuthorities: Object.freeze(jwtAuthorities),
    sequence: checkCount(fields.sequence ?? 0, 'sequence'),
    refreshHintS: checkCount(fields.refreshHintS ?? 0, 'refreshHintS'),
  });
}

/**
 * Reads SPIFFE bundle JSON for `trustDomain`. Entries with a missing or unknown `use` or an unknown
 * `kty` are skipped, as the spec says; any other malformed entry rejects the whole bundle, as
 * go-spiffe does, so a half-read bundle never silently trusts less (or more) than its publisher meant.
 */
export function parseSpiffeBundle(json: string, trustDomain: TrustDomain): TrustBundle {
  return bundleFromDocument(parseJson(json, 'ERR_BUNDLE_INVALID', 'bundle', true), trustDomain, '');
}

/** SPIFFE bundle JSON as SPIRE writes it: X.509 authorities first, spiffe_* members omitted when 0. */
export function encodeSpiffeBundle(bundle: TrustBundle): string {
  return JSON.stringify(bundleDocument(bundle, true), null, JSON_INDENT);
}

/**
 * The "standard JWKS" the Workload API's FetchJWTBundles returns: jwt-svid keys only, with no `use`
 * and no spiffe_* members, so plain JOSE libraries can consume it.
 */
export function encodeJwtJwks(bundle: TrustBundle): string {
  const keys = bundle.jwtAuthorities.map((a) => jwkPublicMembers(a.publicKey, a.kid));
  return JSON.stringify({ keys }, null, JSON_INDENT);
}

/** The X.509 authorities as CERTIFICATE blocks; the JWT authorities have no PEM form and are left out. */
export function bundleToPem(bundle: TrustBundle): string {
  return bundle.x509Authorities.map((der) => encodePem('CERTIFICATE', der)).join('');
}

/** A bundle of X.509 authorities from PEM. Every block must be a CERTIFICATE, and at least one must be there. */
export function bundleFromPem(trustDomain: TrustDomain, pem: string): TrustBundle {
  let blocks: ReturnType<typeof decodePem>;
  try {
    blocks = decodePem(pem, 'pem');
  } catch (err) {
    if (!(err instanceof SigilError)) throw err;
    throw new SigilError('ERR_BUNDLE_INVALID', err.message, { field: 'pem', reason: 'pem', cause: err });
  }
  if (blocks.length === 0) throw invalid('pem', 'holds no CERTIFICATE block', 'pem-empty');
  const certs = blocks.map((block, i) => {
    const where = `pem block ${i + 1}`;
    if (block.label !== 'CERTIFICATE') {
      throw invalid(where, `is ${quote(block.label)}, expected "CERTIFICATE"`, 'pem-label');
    }
    parseCertificate(block.der, where);
    return block.der;
  });
  rejectDuplicates(
    certs.map((der) => der.toString('base64')),
    (i, first) => invalid(`pem block ${i + 1}`, `duplicates pem block ${first + 1}`, 'duplicate-cert'),
  );
  return createTrustBundle({ trustDomain, x509Authorities: certs });
}

/** Reads `{"trust_domains": {"<name>": <bundle>, …}}`, keyed by bare trust domain name. */
export function parseBundleMap(json: string): Map<string, TrustBundle> {
  const doc = parseJson(json, 'ERR_BUNDLE_INVALID', 'bundle map', true);
  if (!isJsonObject(doc)) throw invalid('(root)', 'must be a JSON object', 'type');
  if (!Object.hasOwn(doc, 'trust_domains')) throw invalid('trust_domains', 'is required', 'missing');
  const entries = doc.trust_domains;
  if (!isJsonObject(entries)) throw invalid('trust_domains', 'must be a JSON object', 'type');
  const out = new Map<string, TrustBundle>();
  for (const [name, value] of Object.entries(entries)) {
    const path = `trust_domains[${JSON.stringify(name)}]`;
    if (name.includes('://')) {
      throw invalid(path, 'key must be a bare trust domain name (no "spiffe://")', 'trust-domain');
    }
    let trustDomain: TrustDomain;
    try {
      trustDomain = parseTrustDomain(name, path);
    } catch (err) {
      if (!(err instanceof SigilError)) throw err;
      throw new SigilError('ERR_BUNDLE_INVALID', err.message, {
        field: path,
        reason: 'trust-domain',
        cause: err,
      });
    }
    out.set(name, bundleFromDocument(value, trustDomain, path));
  }
  return out;
}

/** Writes a bundle map, sorted by trust domain. Refresh hints are left out, as the spec asks of producers. */
export function encodeBundleMap(bundles: Iterable<TrustBundle>): string {
  const sorted = [...bundles].sort((a, b) => compareStrings(a.trustDomain.name, b.trustDomain.name));
  const trustDomains = {};
  sorted.forEach((bundle, i) => {
    const name = bundle.trustDomain.name;
    if (i > 0 && sorted[i - 1]!.trustDomain.name === name) {
      throw invalid(
        'bundles',
        `trust domain ${quote(name)} appears more than once`,
        'duplicate-trust-domain',
      );
    }
    // defineProperty: "__proto__" is a valid trust domain name, and plain assignment would not add it.
    defineMember(trustDomains, name, bundleDocument(bundle, false));
  });
  return JSON.stringify({ trust_domains: trustDomains }, null, JSON_INDENT);
}

/** The X.509 authorities as back-to-back DER certificates, the form Workload API bundle fields carry. */
export function concatX509Authorities(bundle: TrustBundle): Buffer {
  return Buffer.concat(bundle.x509Authorities);
}

// ---- reading ------------------------------------------------------------------------------------

function bundleFromDocument(doc: unknown, trustDomain: TrustDomain, path: string): TrustBundle {
  if (!isJsonObject(doc)) throw invalid(path || '(root)', 'must be a JSON object', 'type');
  const keysPath = member(path, 'keys');
  // go-spiffe errors "no authorities found" here; an empty array, by contrast, is valid and trusts nothing.
  if (!Object.hasOwn(doc, 'keys'))
    throw invalid(keysPath, 'is required (use [] to trust nothing)', 'missing');
  const keys = doc.keys;
  if (!Array.isArray(keys)) throw invalid(keysPath, 'must be an array', 'type');
  const x509Authorities: Buffer[] = [];
  const certIndex = new Map<string, number>();
  const jwtAuthorities: JwtAuthority[] = [];
  const kidIndex = new Map<string, number>();
  keys.forEach((entry, i) => {
    const where = `${keysPath}[${i}]`;
    const authority = readKeyEntry(entry, where);
    if (authority === undefined) return;
    if ('der' in authority) {
      const id = authority.der.toString('base64');
      const first = certIndex.get(id);
      if (first !== undefined)
        throw invalid(`${where}.x5c`, `duplicates ${keysPath}[${first}]`, 'duplicate-cert');
      certIndex.set(id, i);
      x509Authorities.push(authority.der);
    } else {
      const first = kidIndex.get(authority.kid);
      if (first !== undefined) {
        throw invalid(
          `${where}.kid`,
          `duplicate key ID ${quote(authority.kid)} (also ${keysPath}[${first}])`,
          'duplicate-kid',
        );
      }
      kidIndex.set(authority.kid, i);
      jwtAuthorities.push(authority);
    }
  });
  return createTrustBundle({
    trustDomain,
    x509Authorities,
    jwtAuthorities,
    sequence: readCount(doc, 'spiffe_sequence', path),
    refreshHintS: readCount(doc, 'spiffe_refresh_hint', path),
  });
}

/** One JWK: an X.509 authority, a JWT authority, or undefined for an entry the spec says to skip. */
function readKeyEntry(entry: unknown, where: string): { der: Buffer } | JwtAuthority | undefined {
  if (!isJsonObject(entry)) throw invalid(where, 'must be a JSON object', 'type');
  const use = entry.use;
  if (use !== undefined && typeof use !== 'string') throw invalid(`${where}.use`, 'must be a string', 'type');
  // wit-svid keys (an incubating profile go-spiffe knows) are skipped too: Sigil issues no WIT-SVIDs.
  if (use !== X509_SVID_USE && use !== JWT_SVID_USE) return undefined;
  const kty = entry.kty;
  if (kty === undefined) throw invalid(`${where}.kty`, 'is required', 'missing');
  if (typeof kty !== 'string') throw invalid(`${where}.kty`, 'must be a string', 'type');
  if (kty !== 'EC' && kty !== 'RSA') return undefined;
  const key = readPublicKey(entry, kty, where);
  if (use === X509_SVID_USE) {
    if (Object.hasOwn(entry, 'kid'))
      throw invalid(`${where}.kid`, 'must not be set on an x509-svid entry', 'kid');
    return { der: readX5c(entry.x5c, key, `${where}.x5c`) };
  }
  const kid = entry.kid;
  if (kid === undefined) throw invalid(`${where}.kid`, 'is required on a jwt-svid entry', 'missing');
  if (typeof kid !== 'string' || kid === '')
    throw invalid(`${where}.kid`, 'must be a non-empty string', 'type');
  return { kid, publicKey: key };
}

function readPublicKey(entry: Record<string, unknown>, kty: 'EC' | 'RSA', where: string): KeyObject {
  for (const name of PRIVATE_MEMBERS) {
    if (Object.hasOwn(entry, name)) {
      throw invalid(`${where}.${name}`, 'is private key material and must never be published', 'private-key');
    }
  }
  const names = kty === 'EC' ? ['x', 'y'] : ['n', 'e'];
  const jwk: Record<string, string> = { kty };
  if (kty === 'EC') {
    const crv = entry.crv;
    if (crv === undefined) throw invalid(`${where}.crv`, 'is required', 'missing');
    if (typeof crv !== 'string' || CURVE_BYTES[crv] === undefined) {
      throw invalid(`${where}.crv`, `must be "P-256", "P-384" or "P-521" (got ${quote(crv)})`, 'curve');
    }
    jwk.crv = crv;
  }
  for (const name of names) {
    const value = entry[name];
    if (typeof value !== 'string' || !BASE64URL.test(value)) {
      throw invalid(`${where}.${name}`, 'must be unpadded base64url (RFC 7518)', 'base64url');
    }
    if (kty === 'EC' && Buffer.from(value, 'base64url').length !== CURVE_BYTES[jwk.crv!]) {
      throw invalid(`${where}.${name}`, `must be ${CURVE_BYTES[jwk.crv!]} bytes for ${jwk.crv}`, 'key');
    }
    jwk[name] = value;
  }
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    throw invalid(where, `is not a valid ${kty} public key`, 'key', err);
  }
}

function readX5c(x5c: unknown, key: KeyObject, where: string): Buffer {
  const count = Array.isArray(x5c) ? x5c.length : 0;
  if (x5c !== undefined && !Array.isArray(x5c)) throw invalid(where, 'must be an array', 'type');
  if (count !== 1) throw invalid(where, `must hold exactly one certificate (found ${count})`, 'x5c-count');
  const text = (x5c as unknown[])[0];
  if (typeof text !== 'string' || text === '' || !BASE64_STD.test(text)) {
    throw invalid(`${where}[0]`, 'must be standard (padded) base64 DER (RFC 7517 §4.7)', 'base64');
  }
  const der = Buffer.from(text, 'base64');
  const cert = parseCertificate(der, `${where}[0]`);
  // go-jose refuses a JWK whose members disagree with its x5c; so do we, or the two readers could
  // trust different keys.
  if (!spki(cert.publicKey).equals(spki(key))) {
    throw invalid(`${where}[0]`, "public key does not match the entry's key members", 'x5c-key-mismatch');
  }
  return der;
}

function readCount(doc: Record<string, unknown>, name: string, path: string): number {
  const value = doc[name];
  // Go decodes null into a nil pointer, i.e. "unset"; do the same.
  if (value === undefined || value === null) return 0;
  const where = member(path, name);
  if (!(value instanceof JsonNumber) || !/^(?:0|[1-9]\d*)$/.test(value.literal)) {
    const shown = value instanceof JsonNumber ? value.literal : quote(value);
    throw invalid(where, `must be a non-negative integer (got ${shown})`, 'integer');
  }
  if (BigInt(value.literal) > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalid(
      where,
      `${value.literal} is above ${Number.MAX_SAFE_INTEGER}, the largest value Sigil reads exactly`,
      'unsafe-integer',
    );
  }
  return Number(value.literal);
}

// ---- writing ------------------------------------------------------------------------------------

function bundleDocument(bundle: TrustBundle, withRefreshHint: boolean): Record<string, unknown> {
  const keys = [
    ...bundle.x509Authorities.map((der) => ({
      use: X509_SVID_USE,
      ...jwkPublicMembers(new X509Certificate(der).publicKey),
      x5c: [der.toString('base64')],
    })),
    ...bundle.jwtAuthorities.map((a) => ({ use: JWT_SVID_USE, ...jwkPublicMembers(a.publicKey, a.kid) })),
  ];
  const doc: Record<string, unknown> = { keys };
  if (bundle.sequence !== 0) doc.spiffe_sequence = bundle.sequence;
  if (withRefreshHint && bundle.refreshHintS !== 0) doc.spiffe_refresh_hint = bundle.refreshHintS;
  return doc;
}

/** kty, kid (when given), then crv/x/y or n/e: the member order of SPIRE's output. */
function jwkPublicMembers(key: KeyObject, kid?: string): Record<string, string> {
  const jwk = key.export({ format: 'jwk' });
  const head: Record<string, string> = { kty: jwk.kty! };
  if (kid !== undefined) head.kid = kid;
  return jwk.kty === 'EC'
    ? { ...head, crv: jwk.crv!, x: jwk.x!, y: jwk.y! }
    : { ...head, n: jwk.n!, e: jwk.e! };
}

// ---- shared checks ------------------------------------------------------------------------------

function parseCertificate(der: Uint8Array, where: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (err) {
    throw invalid(where, 'is not a parseable X.509 certificate', 'certificate', err);
  }
  // OpenSSL reads the first certificate and ignores the rest, which would hide a second one.
  if (!cert.raw.equals(der)) throw invalid(where, 'has bytes after the certificate', 'certificate');
  checkAuthorityKey(cert.publicKey, `${where} public key`);
  return cert;
}

function freezeAuthority(authority: JwtAuthority, where: string): JwtAuthority {
  const { kid, publicKey, expiresAtMs } = authority;
  if (typeof kid !== 'string' || kid === '')
    throw invalid(`${where}.kid`, 'must be a non-empty string', 'type');
  checkAuthorityKey(publicKey, `${where}.publicKey`);
  if (expiresAtMs === undefined) return Object.freeze({ kid, publicKey });
  if (!Number.isFinite(expiresAtMs)) throw invalid(`${where}.expiresAtMs`, 'must be a finite number', 'type');
  return Object.freeze({ kid, publicKey, expiresAtMs });
}

function checkAuthorityKey(key: unknown, where: string): void {
  if (!(key instanceof KeyObject) || key.type !== 'public') {
    throw invalid(where, 'must be a public KeyObject (a bundle never holds private keys)', 'key');
  }
  const k = key;
  if (k.asymmetricKeyType === 'rsa') return;
  const curve = k.asymmetricKeyDetails?.namedCurve;
  if (k.asymmetricKeyType === 'ec' && curve !== undefined && CURVES[curve] !== undefined) return;
  const found = k.asymmetricKeyType === 'ec' ? `EC ${curve}` : k.asymmetricKeyType;
  throw invalid(where, `must be an EC P-256/P-384/P-521 or RSA key (found ${quote(found)})`, 'key');
}

function checkCount(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalid(field, `must be a non-negative safe integer (got ${quote(value)})`, 'integer');
  }
  return value;
}

function rejectDuplicates(ids: readonly string[], fail: (index: number, first: number) => SigilError): void {
  const seen = new Map<string, number>();
  ids.forEach((id, i) => {
    const first = seen.get(id);
    if (first !== undefined) throw fail(i, first);
    seen.set(id, i);
  });
}

function spki(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' });
}

function member(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function invalid(path: string, rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError('ERR_BUNDLE_INVALID', `${path}: ${rule}`, { field: path, reason, cause });
}

// ---- strict JSON --------------------------------------------------------------------------------

/** A number as written, so integers beyond 2^53 or with a fraction can be refused rather than rounded. */
class JsonNumber {
  constructor(readonly literal: string) {}
}

/** Bundles and JWTs are shallow; the cap keeps hostile input from overflowing the stack. */
const MAX_JSON_DEPTH = 64;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const JSON_WORDS: readonly (readonly [string, unknown])[] = [
  ['true', true],
  ['false', false],
  ['null', null],
];

/**
 * JSON.parse, except that an object with the same member twice is an error (`code`). Two readers
 * that disagree on which duplicate wins can be made to trust different things, so SPIFFE asks
 * consumers to refuse them. Shared with jwt-svid.ts: it is the one strict JSON reader in Sigil.
 * @internal
 */
export function parseJsonStrict(text: string, code: SigilErrorCode, what: string): unknown {
  return parseJson(text, code, what, false);
}

function parseJson(text: string, code: SigilErrorCode, what: string, rawNumbers: boolean): unknown {
  if (typeof text !== 'string') throw new SigilError(code, `${what}: expected JSON text`, { reason: 'json' });
  let i = 0;
  const fail = (rule: string) =>
    new SigilError(code, `${what}: invalid JSON at offset ${i}: ${rule}`, { reason: 'json' });
  const skipSpace = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      i++;
    }
  };
  const readString = (): string => {
    const start = i++;
    for (;;) {
      if (i >= text.length) throw fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) throw fail('control character in string');
      i += c === 0x5c ? 2 : 1;
    }
    i++;
    try {
      // The slice is a complete string literal; JSON.parse decodes (and checks) its escapes.
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      i = start;
      throw fail('invalid escape in string');
    }
  };
  const readValue = (path: string, depth: number): unknown => {
    skipSpace();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= MAX_JSON_DEPTH) throw fail(`nested deeper than ${MAX_JSON_DEPTH} levels`);
      return c === '{' ? readObject(path, depth + 1) : readArray(path, depth + 1);
    }
    if (c === '"') return readString();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      JSON_NUMBER.lastIndex = i;
      const literal = JSON_NUMBER.exec(text)?.[0];
      if (literal === undefined) throw fail('invalid number');
      i += literal.length;
      return rawNumbers ? new JsonNumber(literal) : Number(literal);
    }
    for (const [word, value] of JSON_WORDS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return value;
      }
    }
    throw fail(c === undefined ? 'unexpected end of input' : `unexpected character ${quote(c)}`);
  };
  const readObject = (path: string, depth: number): Record<string, unknown> => {
    i++;
    const out: Record<string, unknown> = {};
    const seen = new Set<string>();
    skipSpace();
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      skipSpace();
      if (text[i] !== '"') throw fail('expected a member name');
      const name = readString();
      if (seen.has(name)) {
        throw new SigilError(code, `${what}: ${path || 'top-level object'} has member ${quote(name)} twice`, {
          field: path === '' ? name : `${path}.${name}`,
          reason: 'duplicate-member',
        });
      }
      seen.add(name);
      skipSpace();
      if (text[i] !== ':') throw fail('expected ":"');
      i++;
      defineMember(out, name, readValue(path === '' ? name : `${path}.${name}`, depth));
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      throw fail('expected "," or "}"');
    }
  };
  const readArray = (path: string, depth: number): unknown[] => {
    i++;
    const out: unknown[] = [];
    skipSpace();
    if (text[i] === ']') {
      i++;
      return out;
    }
    for (;;) {
      out.push(readValue(`${path}[${out.length}]`, depth));
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return out;
      }
      throw fail('expected "," or "]"');
    }
  };
  const value = readValue('', 0);
  skipSpace();
  if (i !== text.length) throw fail('unexpected data after the JSON value');
  return value;
}

/** Adds an own, enumerable member even when its name is "__proto__" (which plain assignment would not). */
function defineMember(target: object, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)
  );
}
