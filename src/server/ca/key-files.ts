// The CA's private-key files in the keys directory: removing those no journal entry names any
// more. A key is written before the journal names it (authority-factory.ts), so a crash or a failed
// save between the two, or a replaced prepared authority, leaves a file nothing refers to; it is a
// private key, so it must not linger. Only files named the way the factory names them are touched:
// anything else an operator put there is left alone.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AuthorityRecord, CaJournal } from './journal.js';

/** authority-factory.ts names: x509-ca-<hex SKID or serial>.key, jwt-<32 base64url chars>.key. */
const CA_KEY_FILE = /^(x509-ca-[0-9a-f]+|jwt-[A-Za-z0-9_-]{32})\.key$/;

export function isCaKeyFile(name: string): boolean {
  return CA_KEY_FILE.test(name);
}

/** Key files named by `before` but not by `after`: call once `after` is saved. */
export async function removeDroppedKeys(
  keysDir: string,
  before: CaJournal,
  after: CaJournal,
  logger: Logger,
): Promise<void> {
  const kept = keyFilesOf(after);
  for (const record of [...before.x509, ...before.jwt] as AuthorityRecord[]) {
    if (kept.has(record.keyFile)) continue;
    try {
      await rm(path.join(keysDir, record.keyFile), { force: true });
      logger.info({ keyFile: record.keyFile, authorityId: record.id }, 'Authority key removed');
    } catch (err) {
      // The journal no longer names it, so the next start's orphan sweep removes it: not worth
      // failing a rotation that is already saved.
      logger.warn(
        { err, keyFile: record.keyFile },
        'Authority key could not be removed; retried at the next start',
      );
    }
  }
}

/**
 * Removes CA key files no entry of `journal` names. Only call with the journal loaded from the store
 * and while this server holds the data directory: a second server mid-prepare would lose its key.
 */
export async function removeOrphanKeys(keysDir: string, journal: CaJournal, logger: Logger): Promise<void> {
  const names = await readdir(keysDir).catch((err: NodeJS.ErrnoException) => {
    // No keys directory yet (first start): nothing can be orphaned.
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const kept = keyFilesOf(journal);
  for (const name of names) {
    if (!isCaKeyFile(name) || kept.has(name)) continue;
    await rm(path.join(keysDir, name), { force: true });
    logger.warn(
      { keyFile: name },
      'Orphaned CA key removed: no journal entry names it (a replaced or interrupted prepare)',
    );
  }
}

function keyFilesOf(journal: CaJournal): Set<string> {
  return new Set([...journal.x509, ...journal.jwt].map((a: AuthorityRecord) => a.keyFile));
}
