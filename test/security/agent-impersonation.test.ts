// An agent's SVID is its key to the agent API (signing its workloads' SVIDs). A look-alike of an
// agent's current SVID from another CA is refused at the handshake (grpc-js shows the server a peer
// certificate only when TLS verified it against our bundle); a connection made before the agent's
// CA was revoked outlives the handshake check, so the server checks the issuer again on every call.
import { createPublicKey } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSpiffeId } from '../../src/spiffe/id.js';
import { generateKey } from '../../src/spiffe/keys.js';
import { encodePem } from '../../src/spiffe/pem.js';
import { createCaCertificate } from '../../src/spiffe/x509-authority.js';
import { describeCertificate, mintX509Svid, prepareIssuer } from '../../src/spiffe/x509-svid.js';
import {
  type Attested,
  attestWithToken,
  bundlePemOf,
  cliJson,
  generateToken,
  newConnection,
  rejectionOf,
  TRUST_DOMAIN,
} from '../support/agent-api-client.js';
import { type ServerProcess, startServerProcess } from '../support/harness.js';

let server: ServerProcess;
let bundlePem: string;
const opened: Attested[] = [];

beforeAll(async () => {
  server = await startServerProcess();
  bundlePem = await bundlePemOf(server);
});
afterAll(async () => {
  for (const agent of opened) agent.connection.close();
  await server?.stop();
});

async function attestAgent(): Promise<Attested> {
  const agent = await attestWithToken(server, bundlePem, await generateToken(server));
  opened.push(agent);
  return agent;
}

describe('agent API authentication', () => {
  it('refuses a look-alike of an agent SVID from another CA (same ID, same serial)', async () => {
    const agent = await attestAgent();
    const leaf = describeCertificate(agent.state.chain[0]!);
    // An attacker's own CA signs a proper SVID with the agent's ID and the serial `agent list` shows.
    const nowMs = Date.now();
    const rogueKey = generateKey('ec-p256');
    const rogueCa = await createCaCertificate({
      trustDomain: TRUST_DOMAIN,
      key: rogueKey,
      notBeforeMs: nowMs - 60_000,
      notAfterMs: nowMs + 3_600_000,
    });
    const key = generateKey('ec-p256');
    const forgedLeaf = mintX509Svid(
      {
        spiffeId: parseSpiffeId(agent.state.spiffeId),
        publicKey: createPublicKey(key),
        notBeforeMs: nowMs - 60_000,
        notAfterMs: nowMs + 600_000,
        serial: Buffer.from(leaf.serialHex, 'hex'),
      },
      prepareIssuer(rogueCa, rogueKey),
    );
    expect(describeCertificate(forgedLeaf).serialHex).toBe(leaf.serialHex);
    const forged = newConnection(server.agentApiAddress, bundlePem);
    forged.setIdentity(
      encodePem('CERTIFICATE', forgedLeaf),
      key.export({ format: 'pem', type: 'pkcs8' }) as string,
    );
    try {
      const refused = await rejectionOf(forged.fetchBundles());
      expect(refused.code, refused.details).toBe(status.UNAUTHENTICATED);
    } finally {
      forged.close();
    }
    // The real SVID still works: the check refuses the forgery, not the agent.
    expect((await agent.connection.fetchBundles()).bundle.length).toBeGreaterThan(0);
  });

  it('refuses, on a connection made before, an agent SVID whose CA was since revoked', async () => {
    const agent = await attestAgent();
    type Authorities = { x509: Array<{ id: string; state: string }> };
    const oldId = (await cliJson<Authorities>(server, 'localauthority', 'show')).x509.find(
      (a) => a.state === 'active',
    )!.id;
    await cliJson(server, 'localauthority', 'prepare', '--kind', 'x509');
    // As a running agent would have from its sync stream: the bundle with both CAs.
    agent.connection.setBundlePem(await bundlePemOf(server));
    await cliJson(server, 'localauthority', 'activate', '--kind', 'x509', '--force');
    await cliJson(server, 'localauthority', 'taint', '--kind', 'x509', '--id', oldId);
    // Tainted, not revoked: the agent can still reach the server to move to the new CA.
    expect((await agent.connection.fetchBundles()).bundle.length).toBeGreaterThan(0);
    await cliJson(server, 'localauthority', 'revoke', '--kind', 'x509', '--id', oldId, '--force');
    const refused = await rejectionOf(agent.connection.fetchBundles());
    expect(refused.code).toBe(status.PERMISSION_DENIED);
    expect(refused.details).toMatch(/its CA was revoked\?\); it must attest again/);
  });
});
