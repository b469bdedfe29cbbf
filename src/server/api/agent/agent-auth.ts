// Who is calling: every agent API call except Attest must come over mTLS with the agent's current
// SVID. TLS verified the chain against our bundle at the handshake (grpc-js shows us the peer
// certificate only then), but a connection outlives it: so here we check again that one of our X.509
// authorities still in the journal signed it (a CA revoked since stops working at once) and that it
// is within its validity, then that it names an agent that is attested and not banned, and that it
// is the SVID we last issued that agent.
import type { X509Certificate } from 'node:crypto';
import { SigilError } from '../../../spiffe/errors.js';
import { parseSpiffeId, type TrustDomain } from '../../../spiffe/id.js';
import { isAgentSpiffeId } from '../../../spiffe/sigil-ids.js';
import { issuingAuthority } from '../../../spiffe/x509-authority.js';
import { describeCertificate } from '../../../spiffe/x509-svid.js';
import type { AttestedNode, NodeStore } from '../../datastore/types.js';

export interface AgentAuthContext {
  readonly nodes: NodeStore;
  readonly trustDomain: TrustDomain;
  /** The CA certificates of every X.509 authority in the journal (revoked ones are gone). */
  x509AuthorityCertificates(): readonly X509Certificate[];
  nowMs(): number;
}

export async function authenticateAgent(
  call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null },
  context: AgentAuthContext,
): Promise<AttestedNode> {
  const { nodes, trustDomain } = context;
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  if (!certificate?.raw) {
    throw new SigilError(
      'ERR_UNAUTHENTICATED',
      'an agent X.509-SVID is required for this call (attest first)',
    );
  }
  const described = describeCertificate(certificate.raw);
  const id = described.spiffeId ? parseSpiffeId(described.spiffeId) : null;
  // Agents' IDs live under /sigil/agent/, which no workload can be issued: a workload SVID never acts as an agent.
  if (id === null || !isAgentSpiffeId(id, trustDomain)) {
    throw new SigilError(
      'ERR_PERMISSION_DENIED',
      `${described.spiffeId ?? 'a certificate without SPIFFE ID'} is not an agent ID`,
    );
  }
  if (!issuingAuthority(certificate.raw, context.x509AuthorityCertificates())) {
    throw new SigilError(
      'ERR_PERMISSION_DENIED',
      `agent ${id}'s SVID was not signed by a current authority of ${trustDomain.name} (its CA was revoked?); it must attest again`,
    );
  }
  const nowMs = context.nowMs();
  if (nowMs < described.notBeforeMs || nowMs >= described.notAfterMs) {
    throw new SigilError(
      'ERR_PERMISSION_DENIED',
      `agent ${id}'s SVID is outside its validity (${new Date(described.notBeforeMs).toISOString()} to ${new Date(described.notAfterMs).toISOString()}); it must attest again`,
    );
  }
  let node: AttestedNode;
  try {
    node = await nodes.fetchNode(id.toString());
  } catch (err) {
    if (err instanceof SigilError && err.code === 'ERR_NODE_NOT_FOUND') {
      throw new SigilError(
        'ERR_PERMISSION_DENIED',
        `agent ${id} is not attested (evicted?); it must attest again`,
      );
    }
    throw err;
  }
  if (node.banned) throw new SigilError('ERR_PERMISSION_DENIED', `agent ${id} is banned`);
  if (node.certSerial !== described.serialHex) {
    throw new SigilError(
      'ERR_PERMISSION_DENIED',
      `agent ${id} presented an SVID that is no longer current (serial ${described.serialHex})`,
    );
  }
  return node;
}
