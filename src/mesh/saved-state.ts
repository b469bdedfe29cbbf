// What an earlier run of the mesh left that this one reuses: the server's data and the agent's
// saved SVID (agent-svid.pem and agent.json in its data dir, the files sigil-agent keeps so that a
// restart does not attest again). Read only, to decide whether a join token is needed and to show
// the agent's ID; the agent itself decides what it trusts.
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Whether `dir` exists and holds anything. */
export function hasEntries(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    // Missing: nothing kept from an earlier run.
    return false;
  }
}

/** When the agent's saved SVID expires (agent-svid.pem, leaf first); 0 when there is none. */
export function agentSvidExpiresAtMs(agentData: string): number {
  try {
    return Date.parse(new X509Certificate(readFileSync(path.join(agentData, 'agent-svid.pem'))).validTo);
  } catch {
    // No SVID saved (first run) or an unreadable one: the agent attests with a new token.
    return 0;
  }
}

/** The agent's own SPIFFE ID as it saved it (agent.json). */
export function agentSpiffeId(agentData: string): string {
  try {
    const meta = JSON.parse(readFileSync(path.join(agentData, 'agent.json'), 'utf8')) as {
      spiffe_id?: unknown;
    };
    return String(meta.spiffe_id);
  } catch {
    // Healthy but not saved yet is not expected; the ID is only shown, so say so rather than fail.
    return '(agent ID not saved yet)';
  }
}
