// Operators rotate and taint the CA by hand: `localauthority` shows the timeline, a tainted old CA
// makes agents re-issue everything it signed within one push, and a revoked one leaves the bundle.

import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { asWorkload, makeSharedDir, startAgentProcess, waitFor } from '../support/agent-harness.js';
import { startServerProcess } from '../support/harness.js';

const TD = 'spiffe://example.org';
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('localauthority', () => {
  it('prepares, activates, taints and revokes, and agents re-issue what a tainted CA signed', async () => {
    const root = makeSharedDir('sigil-taint-');
    cleanups.push(root.cleanup);
    const server = await startServerProcess({ dataDir: path.join(root.dir, 'server') });
    cleanups.push(() => server.stop());
    const bundlePath = path.join(root.dir, 'bundle.pem');
    writeFileSync(bundlePath, (await server.cli('bundle', 'show', '--format', 'pem')).stdout);
    const token = JSON.parse(
      (await server.cli('token', 'generate', '--output', 'json', '--spiffe-id', `${TD}/node1`)).stdout,
    ).token;
    expect(
      (
        await server.cli(
          'entry',
          'create',
          '--spiffe-id',
          `${TD}/web`,
          '--parent-id',
          `${TD}/node1`,
          '--selector',
          'unix:uid:65534',
        )
      ).code,
    ).toBe(0);
    const agent = await startAgentProcess(server, {
      root: path.join(root.dir, 'agent'),
      joinToken: token,
      trustBundlePath: bundlePath,
    });
    cleanups.push(() => agent.stop());

    const fetchIssuer = async () => {
      const res = await asWorkload(65534, agent, 'fetch', 'x509', '--output', 'json');
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(res.stdout).svids[0].serial as string;
    };

    const show = async () =>
      JSON.parse((await server.cli('localauthority', 'show', '--output', 'json')).stdout);
    const first = (await show()).x509;
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ state: 'active', next_event: 'prepare successor' });
    const oldId: string = first[0].id;
    const text = await server.cli('localauthority', 'show');
    expect(text.stdout).toContain('X.509 authorities');
    expect(text.stdout).toContain(oldId);

    const serialBefore = await fetchIssuer();
    const nothingPrepared = await server.cli('localauthority', 'activate', '--kind', 'x509');
    expect(nothingPrepared.code).toBe(1);
    expect(nothingPrepared.stderr).toMatch(
      /no prepared x509 authority to activate; run "localauthority prepare --kind x509" first/,
    );
    expect((await server.cli('localauthority', 'prepare', '--kind', 'x509')).code).toBe(0);
    const activated = await server.cli('localauthority', 'activate', '--kind', 'x509', '--output', 'json');
    expect(activated.code, activated.stderr).toBe(0);
    const newId: string = JSON.parse(activated.stdout).authority.id;
    expect((await show()).x509.map((a: { state: string }) => a.state)).toEqual(['old', 'active']);
    // Activation alone does not force re-issuance: the old CA is still trusted.
    expect(await fetchIssuer()).toBe(serialBefore);

    const refused = await server.cli('localauthority', 'taint', '--kind', 'x509', '--id', newId);
    expect(refused.code).toBe(1);
    expect(refused.stderr + refused.stdout).toMatch(/only an old authority can be tainted/);
    expect((await server.cli('localauthority', 'taint', '--kind', 'x509', '--id', oldId)).code).toBe(0);

    // The taint reaches the agent on its push stream; it re-signs with the new CA.
    await waitFor(
      async () => (await fetchIssuer()) !== serialBefore,
      15_000,
      () => 'SVID was not re-issued after the taint',
    );
    expect(agent.logs()).toMatch(/"tainted":\["[0-9a-f]+"\][^\n]*"msg":"Trust bundle updated"/);

    expect((await server.cli('localauthority', 'revoke', '--kind', 'x509', '--id', oldId)).code).toBe(0);
    expect((await show()).x509.map((a: { id: string }) => a.id)).toEqual([newId]);
    const pem = (await server.cli('bundle', 'show', '--format', 'pem')).stdout;
    const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    expect(certs).toHaveLength(1);
    expect(new X509Certificate(certs[0]!).subject).toContain('O=Sigil');
  }, 90_000);
});
