// Decoding Workload API messages into the SDK's values: X.509-SVIDs with their keys, and bundles by
// trust domain. A message that does not decode is refused whole (ERR_X509_SVID_INVALID /
// ERR_BUNDLE_INVALID); the watch that received it reports the error and keeps the previous state,
// as go-spiffe does, rather than half-applying an update.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { createTrustBundle, parseSpiffeBundle, type TrustBundle } from '../spiffe/bundle.js';
import { splitConcatenatedDer } from '../spiffe/der.js';
import { quote, SigilError } from '../spiffe/errors.js';
import { parseSpiffeId, parseTrustDomain, type SpiffeId } from '../spiffe/id.js';
import { describeCertificate } from '../spiffe/x509-svid.js';
import type {
  JwtBundlesResponseMessage,
  X509BundlesResponseMessage,
  X509SvidMessage,
  X509SvidResponseMessage,
} from './workload-proto.js';

export interface X509Svid {
  readonly spiffeId: SpiffeId;
  /** DER certificates, leaf first. */
  readonly certificates: readonly Buffer[];
  readonly privateKey: KeyObject;
  readonly hint: string;
  /** The leaf's notAfter, in milliseconds since the epoch. */
  readonly expiresAtMs: number;
}

/** Everything one FetchX509SVID message says: the workload's SVIDs and every bundle it should trust. */
export interface X509Context {
  /** The first is the default identity; never empty. */
  readonly svids: readonly X509Svid[];
  /** Own and federated X.509 bundles by trust domain name. */
  readonly bundles: ReadonlyMap<string, TrustBundle>;
}

export function decodeX509SvidResponse(message: X509SvidResponseMessage): X509Context {
  if (message.svids.length === 0) {
    throw new SigilError('ERR_X509_SVID_INVALID', 'workload api: X509SVIDResponse holds no SVIDs', {
      reason: 'empty',
    });
  }
  const svids = message.svids.map((svid, i) => decodeSvid(svid, i));
  const bundles = new Map<string, TrustBundle>();
  // Federated first, so the own trust domain's bundle (carried with each SVID) always wins.
  for (const [tdId, der] of Object.entries(message.federated_bundles)) {
    const bundle = decodeX509Bundle(tdId, der, `federated_bundles[${tdId}]`);
    bundles.set(bundle.trustDomain.name, bundle);
  }
  message.svids.forEach((svid, i) => {
    const trustDomain = svids[i]!.spiffeId.trustDomain;
    bundles.set(trustDomain.name, decodeX509Bundle(trustDomain.idString, svid.bundle, `svids[${i}].bundle`));
  });
  return Object.freeze({ svids: Object.freeze(svids), bundles });
}

export function decodeX509BundlesResponse(message: X509BundlesResponseMessage): Map<string, TrustBundle> {
  const bundles = new Map<string, TrustBundle>();
  for (const [tdId, der] of Object.entries(message.bundles)) {
    const bundle = decodeX509Bundle(tdId, der, `bundles[${tdId}]`);
    bundles.set(bundle.trustDomain.name, bundle);
  }
  return bundles;
}

/**
 * JWT bundles arrive as plain JWK Sets with no `use` members (they hold only JWT keys), so each key
 * is read as a `jwt-svid` key; our SPIFFE bundle parser would otherwise skip keys without `use`.
 */
export function decodeJwtBundlesResponse(message: JwtBundlesResponseMessage): Map<string, TrustBundle> {
  const bundles = new Map<string, TrustBundle>();
  for (const [tdId, json] of Object.entries(message.bundles)) {
    const trustDomain = parseBundleKey(tdId, `bundles[${tdId}]`);
    let doc: { keys?: unknown };
    try {
      doc = JSON.parse(json.toString('utf8')) as { keys?: unknown };
    } catch (err) {
      throw new SigilError('ERR_BUNDLE_INVALID', `workload api: bundles[${tdId}] is not JSON`, {
        cause: err,
      });
    }
    if (doc !== null && typeof doc === 'object' && Array.isArray(doc.keys)) {
      doc.keys = doc.keys.map((key: unknown) =>
        key !== null && typeof key === 'object' && !('use' in key) ? { ...key, use: 'jwt-svid' } : key,
      );
    }
    bundles.set(trustDomain.name, parseSpiffeBundle(JSON.stringify(doc), trustDomain));
  }
  return bundles;
}

function decodeSvid(svid: X509SvidMessage, i: number): X509Svid {
  const where = `svids[${i}]`;
  const spiffeId = parseSpiffeId(svid.spiffe_id, `${where}.spiffe_id`);
  const certificates = splitConcatenatedDer(svid.x509_svid);
  if (certificates.length === 0) throw svidError(`${where}.x509_svid is empty`, 'empty-chain');
  const leaf = describeCertificate(certificates[0]!);
  if (leaf.spiffeId !== spiffeId.toString()) {
    throw svidError(
      `${where}: leaf URI SAN ${quote(leaf.spiffeId)} does not match spiffe_id ${quote(svid.spiffe_id)}`,
      'id-mismatch',
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: svid.x509_svid_key, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new SigilError('ERR_KEY_INVALID', `workload api: ${where}.x509_svid_key is not PKCS#8 DER`, {
      cause: err,
    });
  }
  return Object.freeze({
    spiffeId,
    certificates: Object.freeze(certificates),
    privateKey,
    hint: svid.hint,
    expiresAtMs: leaf.notAfterMs,
  });
}

function decodeX509Bundle(tdId: string, der: Buffer, where: string): TrustBundle {
  const trustDomain = parseBundleKey(tdId, where);
  return createTrustBundle({ trustDomain, x509Authorities: splitConcatenatedDer(der) });
}

function parseBundleKey(tdId: string, where: string) {
  try {
    return parseTrustDomain(tdId, where);
  } catch (err) {
    throw new SigilError('ERR_BUNDLE_INVALID', `workload api: ${where}: key is not a trust domain ID`, {
      cause: err,
    });
  }
}

function svidError(rule: string, reason: string): SigilError {
  return new SigilError('ERR_X509_SVID_INVALID', `workload api: ${rule}`, { reason });
}
