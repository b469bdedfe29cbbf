// The manager's SvidSigner over the server connection: wire results into the manager's shapes
// (expiry in ms), counting what was minted and what failed on the way.
import type { SvidSigner } from '../manager/index.js';
import type { SvidKind } from '../metrics.js';
import type { ServerConnection } from './connection.js';

/** What the signer reports: SVIDs received, and SVIDs asked for and not received. */
export interface MintCounts {
  minted(kind: SvidKind, count: number): void;
  mintFailed(kind: SvidKind, count: number): void;
}

export function serverSigner(
  connection: Pick<ServerConnection, 'signX509Svids' | 'mintJwtSvid'>,
  counts: MintCounts,
): SvidSigner {
  return {
    signX509Svids: async (requests) => {
      const { results } = await connection.signX509Svids(requests).catch((err: unknown) => {
        counts.mintFailed('x509', requests.length);
        throw err;
      });
      const failed = results.filter((r) => r.error).length;
      counts.minted('x509', results.length - failed);
      // A result the server left out is a failure too: the manager retries that entry.
      counts.mintFailed('x509', failed + Math.max(0, requests.length - results.length));
      return results.map((r) =>
        r.error
          ? { entryId: r.entryId, error: r.error }
          : { entryId: r.entryId, chain: r.svidChain, expiresAtMs: r.expiresAt * 1000 },
      );
    },
    mintJwtSvid: async (entryId, audience) => {
      const minted = await connection.mintJwtSvid(entryId, audience).catch((err: unknown) => {
        counts.mintFailed('jwt', 1);
        throw err;
      });
      counts.minted('jwt', 1);
      return { token: minted.token, expiresAtMs: minted.expiresAt * 1000 };
    },
  };
}
