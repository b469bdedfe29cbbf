// `localauthority activate|revoke --wait DURATION`: wait until the step is safe (the prepared
// authority has been published for ca.publish_lead; nothing live chains to the old one), showing
// what is being waited for, then let the server do it. The server checks again itself, so a race
// between the wait and the request is refused, never unsafe.
import { sleep } from '../../../spiffe/backoff.js';
import { type Clock, holdProcessOpen, systemClock } from '../../../spiffe/clock.js';
import { SigilError } from '../../../spiffe/errors.js';
import { jsonBody } from '../admin-client.js';
import type { CommandContext } from '../command.js';
import { formatTime } from '../format.js';

/** How often `show` is asked again while waiting: agents move within seconds of a taint. */
const POLL_MS = 1_000;

export interface WaitedAuthority {
  readonly id: string;
  readonly state: string;
  readonly safe_to_activate_at: number | null;
  readonly dependents: { agents: number; unknown_agents: number; server_svid: boolean } | null;
}

/** What `step` still waits for on this authority list, or null once it is safe. */
export type Blocker = (authorities: readonly WaitedAuthority[], nowMs: number) => string | null;

export const untilPublished: Blocker = (authorities, nowMs) => {
  const prepared = authorities.find((a) => a.state === 'prepared');
  if (!prepared || prepared.safe_to_activate_at === null) return null; // the server explains
  return prepared.safe_to_activate_at * 1000 > nowMs
    ? `the prepared authority ${prepared.id} is published to agents until ${formatTime(prepared.safe_to_activate_at)} (ca.publish_lead)`
    : null;
};

export function untilNothingChains(id: string): Blocker {
  return (authorities) => {
    const dependents = authorities.find((a) => a.id === id)?.dependents;
    if (!dependents) return null;
    const { agents, unknown_agents: unknown, server_svid: server } = dependents;
    if (agents === 0 && unknown === 0 && !server) return null;
    const parts = [
      ...(agents > 0 ? [`${agents} live agent SVID(s)`] : []),
      ...(unknown > 0 ? [`${unknown} agent(s) of unknown issuer (they move when they next renew)`] : []),
      ...(server ? ['the server SVID'] : []),
    ];
    return `${parts.join(', ')} still chain to ${id}`;
  };
}

/** Polls `GET /v1/authorities` until `blocker` says nothing, or throws once `waitMs` has passed. */
export async function waitUntilSafe(
  ctx: CommandContext,
  kind: 'x509' | 'jwt',
  waitMs: number,
  blocker: Blocker,
  clock: Clock = systemClock,
): Promise<void> {
  const deadlineMs = clock.nowMs() + waitMs;
  const release = holdProcessOpen();
  const never = new AbortController().signal;
  let lastShown = '';
  try {
    for (;;) {
      const body = jsonBody<Record<string, WaitedAuthority[]>>(
        await ctx.client().request('GET', '/v1/authorities'),
      );
      const waitingFor = blocker(body[kind] ?? [], clock.nowMs());
      if (waitingFor === null) return;
      if (clock.nowMs() >= deadlineMs) {
        throw new SigilError(
          'ERR_AUTHORITY_STATE',
          `gave up waiting: ${waitingFor}; run it again with a longer --wait, or --force to accept the risk`,
          { field: '--wait' },
        );
      }
      if (waitingFor !== lastShown) ctx.io.stderr.write(`waiting: ${waitingFor}…\n`);
      lastShown = waitingFor;
      await sleep(clock, Math.min(POLL_MS, deadlineMs - clock.nowMs()), never);
    }
  } finally {
    release();
  }
}
