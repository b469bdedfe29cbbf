// Where the admin socket is when nothing names it. `sigil-server run` listens there and every other
// command connects there, so both ask here, for the same user and environment, and find each other.
import { defaultSocketPath } from '../../spiffe/runtime-dir.js';
import type { CliIo } from './command.js';

/** The default admin socket for the CLI's user (`io.uid`, else this process's) and environment. */
export function defaultAdminSocket(io: Pick<CliIo, 'uid' | 'env'>): string {
  return defaultSocketPath('serverAdmin', { uid: io.uid ?? process.getuid!(), env: io.env });
}
