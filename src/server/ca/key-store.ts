// The one writer for secret files (private keys): created 0600 from the first byte, written to a
// temp file and renamed, so a crash never leaves a half-written or world-readable key behind.
import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { SigilError } from '../../spiffe/errors.js';

/** Creates `dir` (and parents) owner-only; tightens it if it already exists. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

export function writeSecretFile(file: string, data: string | Buffer): void {
  ensurePrivateDir(path.dirname(file));
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}

export function writePrivateKeyFile(file: string, key: KeyObject): void {
  writeSecretFile(file, key.export({ format: 'pem', type: 'pkcs8' }) as string);
}

export function readPrivateKeyFile(file: string): KeyObject {
  try {
    return createPrivateKey({ key: readFileSync(file, 'utf8'), format: 'pem' });
  } catch (err) {
    throw new SigilError('ERR_KEY_INVALID', `cannot load private key ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
