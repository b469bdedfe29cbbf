// How long an SVID may live without being cut short by CA rotation, and the operator-facing
// warnings when configured TTLs exceed it. The server logs the warnings at startup; nothing here
// refuses a config, since a cut-short SVID is still valid, just renewed sooner than asked.
import { formatDuration } from '../spiffe/duration.js';
import { SigilError } from '../spiffe/errors.js';
import {
  DEFAULT_ACTIVATE_AT_FRACTION,
  type RotationOptions,
  resolveRotationOptions,
} from './rotation-options.js';

/**
 * The longest SVID (or JWT-SVID) TTL that is never cut short: an authority signs until its
 * successor activates at activateAtFraction, and no SVID may outlive its signer, so one minted just
 * before activation has caTtl × (1 − activateAtFraction) left (4h of a 24h CA at 5/6).
 */
export function maxSvidTtlMs(caTtlMs: number, activateAtFraction = DEFAULT_ACTIVATE_AT_FRACTION): number {
  if (!(Number.isFinite(caTtlMs) && caTtlMs > 0)) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `rotation: caTtlMs must be a positive number (got ${caTtlMs})`,
      {
        field: 'caTtlMs',
        reason: 'out-of-range',
      },
    );
  }
  // The same rounding as the activation mark, so an SVID of exactly this TTL is never cut.
  return caTtlMs - Math.round(caTtlMs * resolveRotationOptions({ activateAtFraction }).activateAtFraction);
}

export interface RotationConfig extends RotationOptions {
  /** ca.ttl: lifetime of each X.509 CA and JWT signing key. */
  readonly caTtlMs: number;
  readonly defaultX509SvidTtlMs: number;
  readonly defaultJwtSvidTtlMs?: number;
  readonly agentSvidTtlMs?: number;
}

/** Human-readable problems with the rotation timing of `config`; empty when there are none. */
export function rotationWarnings(config: RotationConfig): string[] {
  const opts = resolveRotationOptions(config);
  const limitMs = maxSvidTtlMs(config.caTtlMs, opts.activateAtFraction);
  const messages: string[] = [];
  const ttls: [string, number | undefined][] = [
    ['default_x509_svid_ttl', config.defaultX509SvidTtlMs],
    ['default_jwt_svid_ttl', config.defaultJwtSvidTtlMs],
    ['agent_svid_ttl', config.agentSvidTtlMs],
  ];
  for (const [name, ttlMs] of ttls) {
    if (ttlMs === undefined || ttlMs <= limitMs) continue;
    messages.push(
      `${name} (${formatDuration(ttlMs)}) is longer than ${formatDuration(limitMs)}, the part of ca.ttl ` +
        `(${formatDuration(config.caTtlMs)}) left after the next authority activates; SVIDs minted late in ` +
        `an authority's life will expire with it, sooner than asked. Lower ${name} or raise ca.ttl`,
    );
  }
  const leadRoomMs = Math.round(config.caTtlMs * opts.activateAtFraction);
  if (leadRoomMs < opts.minPublishLeadMs) {
    messages.push(
      `ca.ttl (${formatDuration(config.caTtlMs)}) leaves ${formatDuration(leadRoomMs)} before the next ` +
        `authority should activate, less than the ${formatDuration(opts.minPublishLeadMs)} it must be ` +
        `published first; activation will be late and SVIDs will be cut short. Raise ca.ttl`,
    );
  }
  return messages;
}
