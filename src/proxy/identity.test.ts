// ProxyIdentity.verifyPeer remembers verified chains; these tests pin down when it must not.
import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../spiffe/clock.js';
import { isSigilError } from '../spiffe/errors.js';
import { ProxyIdentity } from './identity.js';
import { FakeSource, makeTrustDomain } from './testing.test-support.js';

const MINUTE_MS = 60_000;

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isSigilError(err)) return err.reason;
    throw err;
  }
  return undefined;
}

describe('ProxyIdentity.verifyPeer', () => {
  it('answers a chain it verified before with the same peer, and still refuses what it never verified', async () => {
    const td = await makeTrustDomain('example.org');
    const other = await makeTrustDomain('example.org');
    const bundles = new Map([[td.name, td.bundle]]);
    const identity = new ProxyIdentity(new FakeSource(td.mint('/proxy'), bundles));
    const peer = td.mint('/caller');
    const first = identity.verifyPeer(peer.certificates);
    expect(first.spiffeId).toBe('spiffe://example.org/caller');
    expect(identity.verifyPeer(peer.certificates)).toBe(first);
    // Same trust domain name, different CA: not in the bundle, so no path.
    expect(reasonOf(() => identity.verifyPeer(other.mint('/caller').certificates))).toBe('no-path');
  });

  it('verifies a remembered chain again once it has expired, and refuses it', async () => {
    const td = await makeTrustDomain('example.org');
    const clock = new ManualClock(systemClock.nowMs());
    const identity = new ProxyIdentity(new FakeSource(td.mint('/proxy'), new Map([[td.name, td.bundle]])), {
      clock,
    });
    const now = clock.nowMs();
    const peer = td.mint('/caller', { notBeforeMs: now - MINUTE_MS, notAfterMs: now + MINUTE_MS });
    expect(identity.verifyPeer(peer.certificates).spiffeId).toBe('spiffe://example.org/caller');
    await clock.advance(2 * MINUTE_MS);
    expect(reasonOf(() => identity.verifyPeer(peer.certificates))).toBe('expired');
  });

  it('forgets verified chains when the bundles change', async () => {
    const td = await makeTrustDomain('example.org');
    const replacement = await makeTrustDomain('example.org');
    const own = td.mint('/proxy');
    const source = new FakeSource(own, new Map([[td.name, td.bundle]]));
    const identity = new ProxyIdentity(source);
    const peer = td.mint('/caller');
    identity.verifyPeer(peer.certificates);
    // The old CA is dropped from the bundle (e.g. revoked): its leaves must stop getting in at once.
    source.push(own, new Map([[td.name, replacement.bundle]]));
    expect(reasonOf(() => identity.verifyPeer(peer.certificates))).toBe('no-path');
  });
});
