// Who is calling: every agent API call except Attest must come over mTLS with the agent's current
// SVID. TLS has already checked the chain against our bundle; here we check that the SVID names an
// agent that is attested, not banned, and that this is the SVID we last issued it.
import { SigilError } from '../../../spiffe/errors.js';
import { parseSpiffeId, type TrustDomain } from '../../../spiffe/id.js';
import { isAgentSpiffeId } from '../../../spiffe/sigil-ids.js';
import { describeCertificate } from '../../../spiffe/x509-svid.js';
import type { AttestedNode, NodeStore } from '../../datastore/types.js';

export async function authenticateAgent(
  call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null },
  nodes: NodeStore,
  trustDomain: TrustDomain,
): Promise<AttestedNode> {
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
