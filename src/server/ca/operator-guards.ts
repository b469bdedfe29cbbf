// What operators may do to which authority, and the checks that keep one following the docs from
// locking agents out: activating a prepared authority before consumers can have fetched it, and
// revoking one that live credentials still chain to. Those return null when safe, else the refusal
// and the risk a forced run takes (refuseUnlessForced enforces it).
import type { Logger } from 'pino';
import { quote, SigilError } from '../../spiffe/errors.js';
import type { AuthorityDependents } from '../api/admin/deps.js';
import { type AuthorityKind, type AuthorityRecord, inState } from './journal.js';

export interface GuardVerdict {
  /** The refusal, naming when or how it becomes safe. */
  readonly message: string;
  /** What forcing it anyway risks (logged at warn when forced). */
  readonly risk: string;
}

/** Activating `id` before `safeAtMs` (published + publish lead). */
export function checkPublishLead(
  kind: AuthorityKind,
  id: string,
  nowMs: number,
  safeAtMs: number,
): GuardVerdict | null {
  if (nowMs >= safeAtMs) return null;
  const risk =
    kind === 'x509'
      ? 'agents and federated peers whose bundle does not hold it yet cannot verify the server or any SVID it signs, and may be locked out'
      : 'validators whose bundle does not hold it yet reject every JWT-SVID it signs';
  const waitS = Math.ceil((safeAtMs - nowMs) / 1000);
  return {
    message: `${kind} authority ${id} has not been published for the publish lead yet: it is safe to activate at ${new Date(safeAtMs).toISOString()} (in ${waitS}s); activating now means ${risk}; wait, or force it (--force)`,
    risk,
  };
}

/** Revoking X.509 authority `id` while `chained` still depend on it. */
export function checkNothingChains(id: string, chained: AuthorityDependents): GuardVerdict | null {
  const parts = [
    ...(chained.serverSvid ? ["the server's own SVID"] : []),
    ...(chained.agents > 0 ? [`${chained.agents} live agent SVID${chained.agents === 1 ? '' : 's'}`] : []),
    ...(chained.unknownAgents > 0
      ? [
          `${chained.unknownAgents} live agent SVID(s) whose issuer is not recorded (renewed before this server version)`,
        ]
      : []),
  ];
  if (parts.length === 0) return null;
  const risk = 'agents still on it can no longer reach the server until they attest again';
  return {
    message: `x509 authority ${id} still has ${parts.join(' and ')} chaining to it; agents move to the active authority when they renew after the taint ("localauthority show" counts what is left); revoking now means ${risk}; wait, or force it (--force)`,
    risk,
  };
}

/** Throws the verdict's refusal (ERR_AUTHORITY_STATE), or when forced logs its risk at warn. */
export function refuseUnlessForced(
  verdict: GuardVerdict | null,
  force: boolean,
  logger: Logger,
  fields: Record<string, unknown>,
  forcedMessage: string,
): void {
  if (!verdict) return;
  if (!force) throw new SigilError('ERR_AUTHORITY_STATE', verdict.message, { reason: 'unsafe' });
  logger.warn({ ...fields, risk: verdict.risk }, forcedMessage);
}

export function findAuthority(
  list: readonly AuthorityRecord[],
  kind: AuthorityKind,
  id: string,
): AuthorityRecord {
  const found = list.find((a) => a.id === id);
  if (found) return found;
  throw new SigilError(
    'ERR_AUTHORITY_NOT_FOUND',
    `no ${kind} authority ${quote(id)} (see "localauthority show")`,
    {
      field: 'id',
    },
  );
}

export function requirePrepared(list: readonly AuthorityRecord[], kind: AuthorityKind): AuthorityRecord {
  const prepared = inState(list, 'prepared');
  if (prepared) return prepared;
  throw new SigilError(
    'ERR_AUTHORITY_STATE',
    `no prepared ${kind} authority to activate; run "localauthority prepare --kind ${kind}" first`,
  );
}

export function requireOld(target: AuthorityRecord, kind: AuthorityKind): void {
  if (target.state === 'old') return;
  throw new SigilError(
    'ERR_AUTHORITY_STATE',
    `${kind} authority ${target.id} is ${target.state}; only an old authority can be tainted (activate its successor first)`,
  );
}

export function requireTainted(target: AuthorityRecord, kind: AuthorityKind): void {
  if (target.tainted) return;
  throw new SigilError(
    'ERR_AUTHORITY_STATE',
    `${kind} authority ${target.id} is not tainted; taint it first, then revoke once agents have re-signed`,
  );
}
