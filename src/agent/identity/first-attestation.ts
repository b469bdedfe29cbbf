// The agent's first attestation: a server that is down, restarting or rate-limiting us is retried
// with backoff (a fresh machine often boots before its server is reachable), with a progress line per
// attempt; a refusal (bad or spent evidence, a ban) is final and thrown for the CLI to report. The
// evidence is not spent by a failed attempt (the server spends a token only on success).
import type { Logger } from 'pino';
import { Backoff, sleep } from '../../spiffe/backoff.js';
import type { Clock } from '../../spiffe/clock.js';
import { isSigilError, SigilError } from '../../spiffe/errors.js';
import type { AgentState } from '../agent-state.js';
import { classifyServerFailure, describeServerFailure } from './server-failure.js';

/** Retries start at 1 s and double up to 30 s: a server that comes up is used within half a minute. */
const ATTEST_BACKOFF = Backoff.create({ initialMs: 1_000, maxMs: 30_000 });

export interface FirstAttestationOptions {
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** The advice logged when the server's certificate does not chain to our bundle. */
  staleBundleAdvice(): string;
}

export async function attestUntilAccepted(
  attempt: () => Promise<AgentState>,
  options: FirstAttestationOptions,
): Promise<AgentState> {
  const { clock, logger, signal } = options;
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (err) {
      const kind = classifyServerFailure(err);
      // Only the server's absence or load is retried: a refusal, a bad answer or our own
      // misconfiguration would fail the same way again.
      const retryable = isSigilError(err, 'ERR_UNAVAILABLE') || isSigilError(err, 'ERR_RESOURCE_EXHAUSTED');
      if (kind === 'refused' || !retryable || signal.aborted) throw err;
      const delayMs = Math.round(ATTEST_BACKOFF.afterFailures(failures).delayMs(options.random));
      const fields = { attempt: failures + 1, retryInMs: delayMs, err: describeServerFailure(err) };
      if (kind === 'stale-bundle') logger.error(fields, options.staleBundleAdvice());
      else if (kind === 'rate-limited')
        logger.warn(fields, 'The server is rate-limiting attestations; retrying');
      else logger.warn(fields, 'Cannot reach the server to attest; retrying');
      await sleep(clock, delayMs, signal);
      if (signal.aborted) {
        throw new SigilError('ERR_UNAVAILABLE', 'the agent stopped before it could attest', { cause: err });
      }
    }
  }
}
