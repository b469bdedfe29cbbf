// A TCP listener that cannot bind, said in the operator's words: which setting, which address, why,
// and which flag or key to change (`admin_bind 127.0.0.1:8082 is in use (EADDRINUSE); choose
// another with --admin-bind`) instead of a stack trace. Every TCP listener of the server, agent
// and proxy binds through rethrowListenError, so a new one (a metrics port…) gets the same words.
import { SigilError } from './errors.js';

export interface ListenTarget {
  /** The config key (or dotted path) that set the address, e.g. `admin_bind`, `inbound[0].listen`. */
  readonly setting: string;
  readonly host: string;
  readonly port: number;
  /** The command-line flag that overrides the setting, when there is one. */
  readonly flag?: string | undefined;
}

/**
 * A rejection handler for a listener's start: `startX(…).catch(rethrowListenError(target))` turns a
 * bind failure into a config error naming the setting and lets any other error pass unchanged.
 */
export function rethrowListenError(target: ListenTarget): (err: unknown) => never {
  return (err) => {
    throw tcpListenError(target, err) ?? err;
  };
}

const WHY: Readonly<Record<string, string>> = {
  EADDRINUSE: 'is in use',
  EACCES: 'may not be bound by this user (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  EPERM: 'may not be bound by this user',
  EADDRNOTAVAIL: 'is not an address of this machine',
};

/** The SigilError for a failed bind of `target`, or undefined when `err` is not a bind failure. */
export function tcpListenError(target: ListenTarget, err: unknown): SigilError | undefined {
  const code = errnoOf(err);
  if (code === undefined || !(code in WHY || code.startsWith('EADDR') || code === 'ENOTFOUND'))
    return undefined;
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const why = WHY[code] ?? 'cannot be listened on';
  const change =
    target.flag === undefined
      ? `choose another with ${target.setting} in the config`
      : `choose another with ${target.flag}`;
  return new SigilError(
    'ERR_CONFIG_INVALID',
    `${target.setting} ${host}:${target.port} ${why} (${code}); ${change}`,
    {
      field: target.setting,
      reason: 'listen',
      cause: err,
    },
  );
}

/** The errno code of `err` or of an error it wraps (a few levels of `cause` at most). */
function errnoOf(err: unknown): string | undefined {
  let current = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    current = current.cause;
  }
  return undefined;
}
