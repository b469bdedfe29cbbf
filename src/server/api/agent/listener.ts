// Binds the agent API: gRPC over TLS with the server's SVID. Client certificates are requested but
// not required (Attest comes without one); TLS checks any presented chain against our bundle, and
// each handler then decides whether the call needs an agent (agent-auth.ts).
import { experimental, Server } from '@grpc/grpc-js';
import { agentApiService } from '../../../../proto/agent-api.js';
import { SigilError } from '../../../spiffe/errors.js';
import type { TlsMaterial } from '../../../spiffe/tls-material.js';
import type { AgentApiDeps } from './deps.js';
import { createAgentService } from './service.js';

/** In-flight streams get this long to finish when the server stops. */
const DRAIN_MS = 2_000;

export async function startAgentApi(
  bind: { host: string; port: number },
  material: TlsMaterial,
  deps: AgentApiDeps,
): Promise<{ address: { host: string; port: number }; close(): Promise<void> }> {
  const server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  server.addService(agentApiService, createAgentService(deps));
  // The same object serves as CA and identity provider (it speaks both listener protocols).
  const credentials = experimental.createCertificateProviderServerCredentials(material, material, false);
  const host = bind.host.includes(':') ? `[${bind.host}]` : bind.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${bind.port}`, credentials, (err, boundPort) =>
      err
        ? reject(
            new SigilError(
              'ERR_UNAVAILABLE',
              `cannot listen for agents on ${host}:${bind.port}: ${err.message}`,
              { cause: err },
            ),
          )
        : resolve(boundPort),
    ),
  );
  return {
    address: { host: bind.host, port },
    close: () =>
      new Promise<void>((resolve) => {
        const force = deps.clock.setTimer(DRAIN_MS, () => server.forceShutdown());
        server.tryShutdown(() => {
          force();
          resolve();
        });
      }),
  };
}
