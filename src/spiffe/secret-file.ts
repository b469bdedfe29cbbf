// The one writer for files that must never be seen half-written or with wider permissions than
// intended (private keys 0600, SVIDs, bundles). The temp file is created exclusively ("wx": never
// through an existing file or symlink) with its final mode, synced, then renamed into place.
import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { quote, SigilError } from './errors.js';

export const SECRET_FILE_MODE = 0o600;
export const PUBLIC_FILE_MODE = 0o644;

/**
 * Creates `dir` (and parents) owner-only; tightens it if it already exists. A directory that
 * belongs to another user is refused, not tightened: its owner could loosen it again and read the
 * keys we write into it.
 */
export function ensurePrivateDir(dir: string, uid: number | undefined = process.getuid?.()): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const owner = statSync(dir).uid;
  if (uid !== undefined && owner !== uid) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `directory ${quote(dir)} belongs to uid ${owner}, not to uid ${uid} (this process): its owner could read the keys kept there; remove it, or choose another directory`,
      { field: 'data_dir', reason: 'owner' },
    );
  }
  chmodSync(dir, 0o700);
}

export async function writeFileAtomic(file: string, contents: string | Buffer, mode: number): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(contents);
      // The umask may have narrowed the mode at creation; a rename keeps what we set here.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Writes a private key as PKCS#8 PEM, 0600, into an owner-only directory. */
export async function writePrivateKeyFile(file: string, key: KeyObject): Promise<void> {
  ensurePrivateDir(path.dirname(file));
  await writeFileAtomic(file, key.export({ format: 'pem', type: 'pkcs8' }) as string, SECRET_FILE_MODE);
}

export async function readPrivateKeyFile(file: string): Promise<KeyObject> {
  try {
    return createPrivateKey({ key: await readFile(file, 'utf8'), format: 'pem' });
  } catch (err) {
    throw new SigilError('ERR_KEY_INVALID', `cannot load private key ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
