// Operators cannot lock agents out by following the docs: activate waits for the publish lead,
// revoke waits until nothing live chains to the authority (each unless forced, logged at warn),
// a taint re-mints the server's own SVID, and the CA's key files never outlive their journal
// entries. Also: an authority activated before a restart is never pruned on a partial record.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSpiffeId } from '../../spiffe/id.js';
import { generateKey } from '../../spiffe/keys.js';
import type { ParsedCsr } from '../../spiffe/x509-csr.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { AttestedNode, DataStore } from '../datastore/types.js';
import { ServerIdentity } from '../identity.js';
import { caTestbed, HOUR } from './ca-testbed.test-support.js';
import type { ServerCa } from './server-ca.js';

const LEAD_MS = 10 * 60_000;
const webId = parseSpiffeId('spiffe://example.org/web');
const agentId = parseSpiffeId('spiffe://example.org/sigil/agent/join_token/n1');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const setup = async () => {
  const testbed = await caTestbed(cleanups);
  return { ...testbed, open: () => testbed.open({ rotation: { minPublishLeadMs: LEAD_MS } }) };
};

/** An agent attests: the CA signs its SVID and the agent API stores the node with its issuer. */
async function attestAgent(ca: ServerCa, store: DataStore, nowMs: number): Promise<AttestedNode> {
  const key = generateKey('ec-p256');
  const csr: ParsedCsr = {
    publicKey: createPublicKey(key),
    spkiDer: createPublicKey(key).export({ type: 'spki', format: 'der' }),
    keyType: 'ec-p256',
  };
  const issued = ca.signAgentSvid({ csr, agentId, ttlMs: HOUR });
  return store.upsertNode({
    spiffeId: agentId.toString(),
    attestationType: 'join_token',
    certSerial: describeCertificate(issued.chain[0]!).serialHex,
    certNotAfterMs: issued.expiresAtMs,
    x509AuthorityId: issued.authorityId,
    selectors: [],
    banned: false,
    canReattest: false,
    createdAtMs: nowMs,
    updatedAtMs: nowMs,
  });
}

describe('localauthority activate', () => {
  it('refuses before the publish lead, saying when it is safe and what forcing risks', async () => {
    const { open, clock, logs } = await setup();
    const ca = await open();
    const prepared = await ca.prepare('x509');
    expect(prepared.safeToActivateAtMs).toBe(clock.nowMs() + LEAD_MS);
    const refused = ca.activate('x509');
    await expect(refused).rejects.toMatchObject({
      code: 'ERR_AUTHORITY_STATE',
      message: expect.stringMatching(
        /has not been published for the publish lead yet: it is safe to activate at 2026-01-01T00:10:00.000Z \(in 600s\).*cannot verify the server.*--force/,
      ),
    });
    await clock.advance(LEAD_MS - 1000);
    await expect(ca.activate('x509')).rejects.toMatchObject({ message: expect.stringContaining('(in 1s)') });
    await clock.advance(1000);
    expect((await ca.activate('x509')).id).toBe(prepared.id);
    expect(logs()).not.toContain('forced');
  });

  it('activates at once when forced, logging the risk at warn', async () => {
    const { open, logs } = await setup();
    const ca = await open();
    const prepared = await ca.prepare('jwt');
    expect((await ca.activate('jwt', { force: true })).state).toBe('active');
    expect(ca.jwtAuthority.kid).toBe(prepared.id);
    expect(logs()).toMatch(
      /"level":40,[^\n]*"risk":"validators whose bundle does not hold it yet reject[^\n]*"msg":"Authority activation forced before its publish lead"/,
    );
  });
});

describe('localauthority taint and revoke', () => {
  it('re-mints the server SVID on taint and refuses revoke while live agents chain to the authority', async () => {
    const { open, clock, store, logs } = await setup();
    const ca = await open();
    const oldId = ca.x509Authority.id;
    const identity = new ServerIdentity(ca, HOUR, clock, pino({ level: 'silent' }));
    cleanups.push(() => identity.close());
    const node = await attestAgent(ca, store, clock.nowMs());
    expect(node.x509AuthorityId).toBe(oldId);

    await ca.prepare('x509');
    await clock.advance(LEAD_MS);
    const newId = (await ca.activate('x509')).id;
    const serverCertBefore = identity.tlsOptions().cert;
    await ca.taint('x509', oldId);
    // main.ts calls refreshTrust on every write of our bundle; a taint is one.
    identity.refreshTrust();
    const serverLeaf = new X509Certificate(identity.tlsOptions().cert);
    const issuers = ca.bundle().x509Authorities.map((der) => new X509Certificate(der));
    const issuer = issuers.find((c) => serverLeaf.checkIssued(c) && serverLeaf.verify(c.publicKey))!;
    expect(identity.tlsOptions().cert).not.toBe(serverCertBefore);
    expect(describeCertificate(issuer.raw).subjectKeyIdHex).toBe(newId);

    const old = (await ca.authorities()).x509.find((a) => a.id === oldId)!;
    // The re-minted server SVID no longer counts; the agent's still does.
    expect(old.dependents).toEqual({ agents: 1, unknownAgents: 0, serverSvid: false });
    await expect(ca.revoke('x509', oldId)).rejects.toMatchObject({
      code: 'ERR_AUTHORITY_STATE',
      message: expect.stringMatching(/still has 1 live agent SVID chaining to it; agents move .*\(--force\)/),
    });

    // The agent renews (after the taint it re-signs): its SVID now chains to the active CA.
    expect((await attestAgent(ca, store, clock.nowMs())).x509AuthorityId).toBe(newId);
    expect((await ca.authorities()).x509.find((a) => a.id === oldId)!.dependents).toEqual({
      agents: 0,
      unknownAgents: 0,
      serverSvid: false,
    });
    await ca.revoke('x509', oldId);
    expect((await ca.authorities()).x509.map((a) => a.id)).toEqual([newId]);
    expect(logs()).not.toContain('forced');
  });

  it("counts the server's own SVID and agents of unknown issuer, and revokes anyway when forced", async () => {
    const { open, clock, store, logs } = await setup();
    const ca = await open();
    const oldId = ca.x509Authority.id;
    ca.signServerSvid({ publicKey: generateKey('ec-p256'), ttlMs: HOUR });
    // A node stored by an older server: no issuer recorded.
    await store.upsertNode({
      spiffeId: 'spiffe://example.org/sigil/agent/join_token/legacy',
      attestationType: 'join_token',
      certSerial: '0a',
      certNotAfterMs: clock.nowMs() + HOUR,
      selectors: [],
      banned: false,
      canReattest: false,
      createdAtMs: clock.nowMs(),
      updatedAtMs: clock.nowMs(),
    });
    await ca.prepare('x509');
    await clock.advance(LEAD_MS);
    await ca.activate('x509');
    await ca.taint('x509', oldId);
    await expect(ca.revoke('x509', oldId)).rejects.toMatchObject({
      message: expect.stringContaining(
        "still has the server's own SVID and 1 live agent SVID(s) whose issuer is not recorded",
      ),
    });
    await ca.revoke('x509', oldId, { force: true });
    expect(logs()).toMatch(
      /"level":40,[^\n]*"msg":"Authority revocation forced while credentials chain to it"/,
    );
  });
});

describe('CA key files', () => {
  it("removes a replaced prepared authority's key, and at start keys no journal entry names", async () => {
    const { open, keysDir, logs } = await setup();
    const ca = await open();
    const first = await ca.prepare('x509');
    await ca.prepare('x509');
    expect(readdirSync(keysDir).filter((f) => f.includes(first.id))).toEqual([]);
    await ca.close();

    const key = generateKey('ec-p256').export({ format: 'pem', type: 'pkcs8' }) as string;
    const orphans = ['x509-ca-00112233.key', `jwt-${'A'.repeat(32)}.key`];
    const foreign = ['notes.txt', 'x509-ca-00112233.key.bak', 'upstream.key'];
    for (const f of [...orphans, ...foreign]) writeFileSync(path.join(keysDir, f), key);
    const before = readdirSync(keysDir).length;
    await open();
    const after = readdirSync(keysDir);
    expect(after).toHaveLength(before - orphans.length);
    for (const f of orphans) expect(after).not.toContain(f);
    for (const f of foreign) expect(after).toContain(f);
    expect(logs()).toContain('"keyFile":"x509-ca-00112233.key","msg":"Orphaned CA key removed');
  });
});

describe('pruning after a restart', () => {
  it('never takes what an authority activated before the restart signed since as exact', async () => {
    const { open, clock } = await setup();
    const before = await open();
    const long = before.signX509Svid({ spiffeId: webId, publicKey: generateKey('ec-p256'), ttlMs: 3 * HOUR });
    await before.close();
    const ca = await open();
    const oldId = ca.x509Authority.id;
    ca.signX509Svid({ spiffeId: webId, publicKey: generateKey('ec-p256'), ttlMs: HOUR });
    await ca.prepare('x509');
    await clock.advance(LEAD_MS);
    await ca.activate('x509');
    const old = (await ca.authorities()).x509.find((a) => a.id === oldId)!;
    // Unknown before the restart, so it stays until its own notAfter; never before the 3h SVID expires.
    expect(old.nextEvent).toBe('prune');
    expect(old.nextEventAtMs).toBeGreaterThanOrEqual(long.expiresAtMs);
    expect(old.nextEventAtMs).toBe(old.notAfterMs);
  });
});
