// Sigil's own identities: the server is spiffe://<td>/sigil/server and agents live under
// /sigil/agent/. The whole /sigil namespace is reserved (as SPIRE reserves /spire/): no operator may
// choose an ID in it, and the CA signs it only through its explicit server and agent methods. The
// server's SVID also carries a marker extension only the CA sets, so agents need more than a URI SAN
// to believe they are talking to the server.
import { derNull } from './der.js';
import { quote, SigilError } from './errors.js';
import { type SpiffeId, spiffeIdFromPath, type TrustDomain } from './id.js';
import { OID_SUBJECT_ALT_NAME, parseCertificate, subjectAltNames } from './x509-certificate.js';

/** Everything at or under this path is Sigil's own, in every trust domain Sigil serves. */
const SIGIL_ID_PATH = '/sigil';
const SERVER_ID_PATH = '/sigil/server';
const AGENT_ID_PATH_PREFIX = '/sigil/agent/';

/**
 * The private OID of the non-critical extension marking the server's own X509-SVID. A `2.25` OID is
 * a UUID written as one decimal arc (ITU-T X.667), unique without registering anything; this one is
 * UUID b009486e-f1fd-46f7-bd7e-9fb557b15369. Non-critical, so third-party verifiers (openssl,
 * go-spiffe) ignore it and the SVID stays an ordinary X509-SVID. Only ServerCa.signServerSvid sets
 * it; the CA never copies extensions from CSRs, so a workload cannot ask for it.
 */
export const SIGIL_SERVER_MARKER_OID = '2.25.233992327053353427304035253114970919785';
/** The marker's value: presence is the whole message. */
export const SIGIL_SERVER_MARKER_VALUE = derNull();

/** True for `spiffe://<td>/sigil` and anything under `spiffe://<td>/sigil/`. */
export function isReservedSpiffeId(id: SpiffeId | string): boolean {
  const path = typeof id === 'string' ? pathOf(id) : id.path;
  return path === SIGIL_ID_PATH || path.startsWith(`${SIGIL_ID_PATH}/`);
}

/**
 * Refuses an operator-chosen ID in the reserved namespace with ERR_SPIFFE_ID_RESERVED naming `field`.
 * Parent IDs are not checked with this: they may name the server or an agent.
 */
export function checkNotReserved(id: SpiffeId, field: string): SpiffeId {
  if (isReservedSpiffeId(id)) {
    throw new SigilError(
      'ERR_SPIFFE_ID_RESERVED',
      `${field}: SPIFFE ID ${quote(id.toString())} is reserved for Sigil's server and agents (everything under ${id.trustDomain.idString}${SIGIL_ID_PATH}); choose another path`,
      { field, reason: 'reserved' },
    );
  }
  return id;
}

export function serverSpiffeId(trustDomain: TrustDomain): SpiffeId {
  return spiffeIdFromPath(trustDomain, SERVER_ID_PATH);
}

export function isAgentSpiffeId(id: SpiffeId, trustDomain: TrustDomain): boolean {
  return id.trustDomain.equals(trustDomain) && id.path.startsWith(AGENT_ID_PATH_PREFIX);
}

/**
 * Why `der` is not the Sigil server's certificate for `trustDomain`, or undefined when it is: exactly
 * one URI SAN, equal to the server ID, and the server marker extension, not critical. The chain
 * itself is checked by TLS before this runs.
 */
export function serverCertificateProblem(der: Buffer, trustDomain: TrustDomain): string | undefined {
  const expected = serverSpiffeId(trustDomain).toString();
  let uris: string[];
  let marker: { readonly critical: boolean } | undefined;
  try {
    const cert = parseCertificate(der);
    const san = cert.extensions.get(OID_SUBJECT_ALT_NAME);
    uris = san ? subjectAltNames(san.value).uris : [];
    marker = cert.extensions.get(SIGIL_SERVER_MARKER_OID);
  } catch (err) {
    return `its certificate is unreadable: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (uris.length !== 1 || uris[0] !== expected) {
    return `it presented URI SANs [${uris.map((u) => quote(u)).join(', ')}], expected exactly ${quote(expected)}`;
  }
  if (marker === undefined) {
    return `its certificate names ${expected} but lacks the Sigil server marker (extension ${SIGIL_SERVER_MARKER_OID}): it was not issued as the server's SVID`;
  }
  if (marker.critical) return `its server marker extension ${SIGIL_SERVER_MARKER_OID} is marked critical`;
  return undefined;
}

/** The path of a valid SPIFFE ID string ("" for a trust domain ID). */
function pathOf(id: string): string {
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? '' : rest.slice(slash);
}
