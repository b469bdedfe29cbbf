// Admin authentication over TCP: the caller must present an X.509-SVID that chains to a bundle we
// hold for its trust domain, and that SPIFFE ID must belong to an entry marked `admin`. No cert or a
// bad one is 401, a valid non-admin is 403; both are logged with the reason, never with the cert,
// and close the connection.
import type { TLSSocket } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseSpiffeBundle, type TrustBundle } from '../../../spiffe/bundle.js';
import { SigilError } from '../../../spiffe/errors.js';
import { parseSpiffeId, type TrustDomain } from '../../../spiffe/id.js';
import { describeCertificate, verifyX509Svid } from '../../../spiffe/x509-svid.js';
import type { AdminDeps } from './deps.js';

/** Routes any caller may reach: probes and scrapers carry no SVID. */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export function mtlsAdminGuard(deps: AdminDeps) {
  const { store, ca, clock, metrics } = deps;

  const bundleFor = async (td: TrustDomain): Promise<TrustBundle | undefined> => {
    if (td.equals(ca.trustDomain)) return ca.bundle();
    const stored = await store.fetchBundle(td.name);
    return stored ? parseSpiffeBundle(stored.bundleJson, td) : undefined;
  };

  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const path = request.url.split('?')[0]!;
    if (OPEN_PATHS.has(path) || path === '/docs' || path.startsWith('/docs/')) return;
    const refuse = (status: 401 | 403, reason: string, message: string, callerId?: string) => {
      metrics.adminAuthFailures.inc({ reason });
      request.log.warn({ reason, callerId, remoteAddress: request.ip }, 'Admin caller refused');
      // No keep-alive for a refused caller: its connection closes after the answer, rather than
      // staying open for more requests that will fail, or for a body it is still sending.
      return reply
        .code(status)
        .header('connection', 'close')
        .send({ error: { code: status === 401 ? 'ERR_UNAUTHENTICATED' : 'ERR_PERMISSION_DENIED', message } });
    };

    const chain = peerChain(request.raw.socket as TLSSocket);
    if (chain.length === 0) {
      return refuse(401, 'no-certificate', 'a client X.509-SVID is required on this admin endpoint');
    }
    let callerId: string;
    try {
      // Bundles are looked up before verifying because verifyX509Svid takes a synchronous lookup.
      const leafTd = leafTrustDomain(chain[0]!);
      const bundle = leafTd ? await bundleFor(leafTd) : undefined;
      const verified = verifyX509Svid(
        chain,
        (td) => (bundle && td.equals(bundle.trustDomain) ? bundle.x509Authorities : undefined),
        clock.nowMs(),
      );
      callerId = verified.spiffeId.toString();
    } catch (err) {
      const reason = err instanceof SigilError ? err.code : 'verify-error';
      const detail = err instanceof SigilError ? err.message : 'certificate could not be verified';
      return refuse(401, reason, `client certificate refused: ${detail}`);
    }
    const entries = await store.listEntries({ spiffeId: callerId }, { pageSize: 1000 });
    if (!entries.items.some((e) => e.admin)) {
      return refuse(
        403,
        'not-admin',
        `${callerId} is not an admin (no entry for it has admin: true)`,
        callerId,
      );
    }
    request.log.debug({ callerId }, 'Admin caller authenticated');
  };
}

/**
 * The peer's certificates as DER, leaf first, following Node's issuer links. A self-signed
 * certificate above the leaf is a root: trust comes only from our bundle, so it is left out.
 */
function peerChain(socket: TLSSocket): Buffer[] {
  if (typeof socket.getPeerCertificate !== 'function') return [];
  const chain: Buffer[] = [];
  let cert = socket.getPeerCertificate(true);
  while (cert?.raw) {
    const issuer = cert.issuerCertificate;
    const selfSigned = !issuer || issuer.fingerprint256 === cert.fingerprint256;
    if (chain.length === 0 || !selfSigned) chain.push(cert.raw);
    if (selfSigned) break;
    cert = issuer;
  }
  return chain;
}

function leafTrustDomain(leaf: Buffer): TrustDomain | null {
  const id = describeCertificate(leaf).spiffeId;
  if (!id) return null;
  try {
    return parseSpiffeId(id).trustDomain;
  } catch {
    // Not a SPIFFE ID: verifyX509Svid reports it with a precise message.
    return null;
  }
}
