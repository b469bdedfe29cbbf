// Operators rotate and taint the CA by hand, with live join-token agents, and the guards refuse the
// steps that would lock agents out (rotation-walkthrough.test.ts runs the README's block as written,
// with --wait): `localauthority show` says when a prepared CA is safe to activate and what
// still chains to an old one; activate before then and revoke while an agent (here one stopped
// during the taint) still holds an SVID from the old CA are refused (they would lock it out); a
// taint makes the server re-mint its own certificate and the running agent re-issue workload
// SVIDs; once the stopped agent is back and renewed, revoke succeeds and the agents still reach
// the server.
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { asWorkload, makeSharedDir, startAgentProcess, waitFor } from '../support/agent-harness.js';
import { type ServerProcess, startServerProcess } from '../support/harness.js';
import { joinToken, uidEntry, writeBundlePem } from '../support/registration.js';

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface WireAuthority {
  id: string;
  state: string;
  safe_to_activate_at: number | null;
  dependents: { agents: number; unknown_agents: number; server_svid: boolean } | null;
}

/** The certificate the agent API presents, and which of the bundle's CAs issued it. */
async function serverCertIssuer(server: ServerProcess): Promise<string> {
  const pem = (await server.cli('bundle', 'show', '--format', 'pem')).stdout;
  const cas = (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (c) => new X509Certificate(c),
  );
  const leaf = await new Promise<X509Certificate>((resolve, reject) => {
    const socket = tls.connect(
      {
        host: server.agentApi.host,
        port: server.agentApi.port,
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
      },
      () => {
        resolve(new X509Certificate(socket.getPeerCertificate().raw));
        socket.destroy();
      },
    );
    socket.once('error', reject);
  });
  const issuer = cas.find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  return issuer?.fingerprint256 ?? 'none';
}

describe('localauthority', () => {
  it('refuses the steps that would lock agents out, and allows them once safe', async () => {
    const root = makeSharedDir('sigil-taint-');
    cleanups.push(root.cleanup);
    const config = path.join(root.dir, 'server.yaml');
    writeFileSync(
      config,
      [
        'trust_domain: example.org',
        'min_svid_ttl: 1s',
        'ca:',
        '  publish_lead: 4s',
        // Long enough that the stopped agent's SVID from the old CA is still live at the revoke.
        'agent_svid_ttl: 60s',
      ].join('\n'),
    );
    const server = await startServerProcess({ configFile: config, dataDir: path.join(root.dir, 'server') });
    cleanups.push(() => server.stop());
    const bundlePath = await writeBundlePem(server, path.join(root.dir, 'bundle.pem'));
    await uidEntry(server, 'web', 65534);
    const agent = await startAgentProcess(server, {
      root: path.join(root.dir, 'agent'),
      joinToken: await joinToken(server),
      trustBundlePath: bundlePath,
    });
    cleanups.push(() => agent.stop());
    // A second agent, down while the CA is tainted: its SVID from the old CA stays live meanwhile.
    const token2 = JSON.parse((await server.cli('token', 'generate', '--output', 'json')).stdout).token;
    const agent2Options = { root: path.join(root.dir, 'agent2'), trustBundlePath: bundlePath };
    let agent2 = await startAgentProcess(server, { ...agent2Options, joinToken: token2 });
    cleanups.push(() => agent2.stop());

    const fetchSerial = async () => {
      const res = await asWorkload(65534, agent, 'fetch', 'x509', '--output', 'json');
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(res.stdout).svids[0].serial as string;
    };
    const show = async (): Promise<WireAuthority[]> =>
      JSON.parse((await server.cli('localauthority', 'show', '--output', 'json')).stdout).x509;

    const first = await show();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ state: 'active', dependents: null });
    const oldId = first[0]!.id;
    const serialBefore = await fetchSerial();
    const issuerBefore = await serverCertIssuer(server);

    const nothingPrepared = await server.cli('localauthority', 'activate', '--kind', 'x509');
    expect(nothingPrepared.code).toBe(1);
    expect(nothingPrepared.stderr).toMatch(/no prepared x509 authority to activate/);

    // 1. prepare, then activate at once as the old README said: refused, saying when it is safe.
    expect((await server.cli('localauthority', 'prepare', '--kind', 'x509')).code).toBe(0);
    const tooSoon = await server.cli('localauthority', 'activate', '--kind', 'x509');
    expect(tooSoon.code).toBe(1);
    expect(tooSoon.stderr).toMatch(/safe to activate at .*cannot verify the server.*\(--force\)/);
    const prepared = (await show()).find((a) => a.state === 'prepared')!;
    expect(prepared.safe_to_activate_at).not.toBeNull();
    expect((await server.cli('localauthority', 'show')).stdout).toContain('safe to activate from');

    // 2. wait for the publish lead (`show` says until when), then activate.
    await new Promise((resolve) =>
      setTimeout(resolve, prepared.safe_to_activate_at! * 1000 - Date.now() + 200),
    );
    const activated = await server.cli('localauthority', 'activate', '--kind', 'x509', '--output', 'json');
    expect(activated.code, activated.stderr).toBe(0);
    const newId: string = JSON.parse(activated.stdout).authority.id;
    expect(newId).toBe(prepared.id);
    // Activation alone does not force re-issuance: the old CA is still trusted.
    expect(await fetchSerial()).toBe(serialBefore);

    const refused = await server.cli('localauthority', 'taint', '--kind', 'x509', '--id', newId);
    expect(refused.code).toBe(1);
    expect(refused.stderr + refused.stdout).toMatch(/only an old authority can be tainted/);

    // 3. taint: the server re-mints its own certificate from the new CA at once, and the running
    // agent re-signs its workload's SVID on the pushed taint.
    await agent2.stop();
    expect((await server.cli('localauthority', 'taint', '--kind', 'x509', '--id', oldId)).code).toBe(0);
    expect(await serverCertIssuer(server)).not.toBe(issuerBefore);
    await waitFor(
      async () => (await fetchSerial()) !== serialBefore,
      15_000,
      () => 'SVID was not re-issued after the taint',
    );
    expect(agent.logs()).toMatch(/"tainted":\["[0-9a-f]+"\][^\n]*"msg":"Trust bundle updated"/);

    // 4. revoke while an agent's own SVID still chains to the old CA: refused, naming it. The
    // running agent moves when it renews (at once after the taint, or at its renewal time); the
    // stopped one cannot until it is back.
    await waitFor(
      async () => (await show()).find((a) => a.id === oldId)!.dependents!.agents === 1,
      40_000,
      () => 'the running agent never moved to the new CA',
    );
    const old = (await show()).find((a) => a.id === oldId)!;
    expect(old.dependents).toEqual({ agents: 1, unknown_agents: 0, server_svid: false });
    expect((await server.cli('localauthority', 'show')).stdout).toContain('chained: 1 agent');
    const early = await server.cli('localauthority', 'revoke', '--kind', 'x509', '--id', oldId);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/still has 1 live agent SVID chaining to it/);

    // 5. wait until `show` says nothing chains to it (the stopped agent is back and renewed), then revoke.
    agent2 = await startAgentProcess(server, agent2Options);
    await waitFor(
      async () => {
        const d = (await show()).find((a) => a.id === oldId)!.dependents!;
        return d.agents === 0 && d.unknown_agents === 0 && !d.server_svid;
      },
      40_000,
      () => 'the restarted agent never moved to the new CA',
    );
    expect((await server.cli('localauthority', 'show')).stdout).toContain('nothing chains to it');
    const revoked = await server.cli('localauthority', 'revoke', '--kind', 'x509', '--id', oldId);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await show()).map((a) => a.id)).toEqual([newId]);
    const pem = (await server.cli('bundle', 'show', '--format', 'pem')).stdout;
    expect(pem.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(1);

    // The agent was not locked out: it still hears from the server (a new entry reaches its workload).
    await uidEntry(server, 'web2', 65534);
    await waitFor(
      async () => {
        const res = await asWorkload(65534, agent, 'fetch', 'x509', '--output', 'json');
        return res.code === 0 && JSON.parse(res.stdout).svids.length === 2;
      },
      15_000,
      () => 'the agent no longer hears from the server after the revoke',
    );
    expect(server.logs()).not.toMatch(/"msg":"Authority \w+ forced/);
  }, 120_000);
});
