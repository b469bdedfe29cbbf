// Node attestation from the agent's side: send the attestor's evidence with a CSR for our own SVID,
// answer any challenges, and take the SVID and trust bundle the server returns.
import { type ServiceError, status } from '@grpc/grpc-js';
import type { AttestResponse } from '../../../proto/agent-api.js';
import type { NodeAttestorAgent } from '../../attestors/node/types.js';
import { parseSpiffeBundle } from '../../spiffe/bundle.js';
import { SigilError } from '../../spiffe/errors.js';
import type { TrustDomain } from '../../spiffe/id.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { AgentState } from '../agent-state.js';
import { createSvidKeyRequest } from '../manager/csr.js';
import type { ServerConnection } from './connection.js';

export async function attestNode(
  connection: ServerConnection,
  attestor: NodeAttestorAgent,
  trustDomain: TrustDomain,
  bootstrap: boolean,
): Promise<AgentState> {
  const request = createSvidKeyRequest();
  const payload = await attestor.payload();
  const { stream, close } = connection.attestStream(bootstrap);
  try {
    return await new Promise<AgentState>((resolve, reject) => {
      stream.on('data', (message: AttestResponse) => {
        if ('challenge' in message && message.challenge && message.challenge.length > 0) {
          attestor.respond(Buffer.from(message.challenge)).then(
            (challengeResponse) => stream.write({ challengeResponse }),
            (err) => {
              stream.cancel();
              reject(err);
            },
          );
          return;
        }
        if ('result' in message && message.result) {
          const result = message.result;
          const chain = result.svidChain.map((c) => Buffer.from(c));
          const described = describeCertificate(chain[0]!);
          if (described.spiffeId !== result.spiffeId) {
            reject(
              new SigilError(
                'ERR_X509_SVID_INVALID',
                `server returned an SVID for ${described.spiffeId}, expected ${result.spiffeId}`,
              ),
            );
            return;
          }
          resolve({
            spiffeId: result.spiffeId,
            chain,
            key: request.key,
            bundle: parseSpiffeBundle(Buffer.from(result.bundle).toString('utf8'), trustDomain),
            canReattest: result.canReattest,
            expiresAtMs: described.notAfterMs,
            joinTokenSha256: null,
          });
        }
      });
      stream.on('error', (err: ServiceError) => reject(attestationError(connection.address, err)));
      stream.on('end', () =>
        reject(
          new SigilError('ERR_UNAVAILABLE', 'the server closed the attestation stream without a result'),
        ),
      );
      stream.write({ params: { attestor: attestor.name, payload, csr: request.csr } });
    });
  } finally {
    stream.end();
    close();
  }
}

/**
 * A failed Attest stream as the caller must act on it: a refusal (bad or spent evidence, a ban) is
 * final; a server that is away or rate-limiting us is worth retrying. The grpc-js error is the cause.
 */
function attestationError(address: string, err: ServiceError): SigilError {
  const details = err.details || err.message;
  switch (err.code) {
    case status.PERMISSION_DENIED:
    case status.UNAUTHENTICATED:
    case status.INVALID_ARGUMENT:
      return new SigilError('ERR_PERMISSION_DENIED', `attestation refused by ${address}: ${details}`, {
        cause: err,
      });
    case status.RESOURCE_EXHAUSTED:
      return new SigilError('ERR_RESOURCE_EXHAUSTED', `attestation rate-limited by ${address}: ${details}`, {
        cause: err,
      });
    default:
      return new SigilError('ERR_UNAVAILABLE', `cannot attest with ${address}: ${details}`, { cause: err });
  }
}
