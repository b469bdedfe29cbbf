// The `unix` workload attestor (SPIRE's unix plugin): selectors from the kernel's view of the
// caller. uid and gid come from the socket's peer credentials, never from anything the client says
// or from /proc (which a process can change after connecting); supplementary groups, the executable
// path and its hash come from /proc/<pid>, which the caller of `attest` must re-validate afterwards
// against PID reuse (see agent/workloadapi/peer-cred.ts). Path and hash describe the executable the
// process ran when it connected (`peer.exe`), and only while it still runs that very file: what
// those selectors prove, and what they cannot, is written up in docs/workload-attestation.md.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type Clock, systemClock } from '../../../spiffe/clock.js';
import { isSigilError, SigilError } from '../../../spiffe/errors.js';
import { makeSelector, type Selector } from '../../../spiffe/selector.js';
import { type ExecutableIdentity, execSince, readExecutable } from '../executable.js';
import type { PeerCred, WorkloadAttestor } from '../types.js';
import { groupLookup, type NameLookup, passwdLookup } from './accounts.js';
import { BinaryHasher } from './binary-hash.js';
import { HASH_BURST_SECONDS, parseUnixAttestorConfig } from './config.js';
import { HashBudget } from './hash-budget.js';

export const UNIX_ATTESTOR_NAME = 'unix';

export interface UnixAttestorDeps {
  /** Root of the proc filesystem. Defaults to '/proc'. */
  procRoot?: string;
  /** uid → user name. Defaults to reading /etc/passwd. */
  lookupUserName?: NameLookup;
  /** gid → group name. Defaults to reading /etc/group. */
  lookupGroupName?: NameLookup;
  /** Paces re-hashing. Defaults to the system clock. */
  clock?: Clock;
}

/** Builds the attestor from raw (snake_case) config; throws ERR_CONFIG_INVALID listing every problem. */
export function createUnixAttestor(rawConfig: unknown, deps: UnixAttestorDeps = {}): WorkloadAttestor {
  const config = parseUnixAttestorConfig(rawConfig);
  const procRoot = deps.procRoot ?? '/proc';
  const lookupUserName = deps.lookupUserName ?? passwdLookup();
  const lookupGroupName = deps.lookupGroupName ?? groupLookup();
  const rate = config.hashRateLimitBytesPerSecond;
  const budget = new HashBudget({
    clock: deps.clock ?? systemClock,
    rehashIntervalMs: config.rehashIntervalMs,
    bytesPerSecond: rate,
    // Never below the size limit: a binary the limit allows must be hashable after a quiet period.
    burstBytes: Math.max(rate * HASH_BURST_SECONDS, config.workloadSizeLimitBytes),
  });
  const hasher = new BinaryHasher(config.workloadSizeLimitBytes, budget);
  const selector = (value: string) => makeSelector(UNIX_ATTESTOR_NAME, value);

  return Object.freeze({
    name: UNIX_ATTESTOR_NAME,
    async attest(peer: PeerCred, signal: AbortSignal): Promise<Selector[]> {
      const procDir = path.join(procRoot, String(peer.pid));
      const selectors = [selector(`uid:${peer.uid}`), selector(`gid:${peer.gid}`)];
      const [userName, groupName] = await Promise.all([lookupUserName(peer.uid), lookupGroupName(peer.gid)]);
      if (userName !== undefined) selectors.push(selector(`user:${userName}`));
      if (groupName !== undefined) selectors.push(selector(`group:${groupName}`));

      for (const gid of await supplementaryGids(procDir, peer.pid)) {
        selectors.push(selector(`supplementary_gid:${gid}`));
        const name = await lookupGroupName(gid);
        if (name !== undefined) selectors.push(selector(`supplementary_group:${name}`));
      }
      signal.throwIfAborted();

      if (config.discoverWorkloadPath) {
        const exe = executableOf(procRoot, peer);
        selectors.push(selector(`path:${exe.path}`));
        if (config.workloadSizeLimitBytes > 0) {
          let digest: string | undefined;
          try {
            digest = await hasher.hash(path.join(procDir, 'exe'), exe);
          } catch (err) {
            throw attestError(peer.pid, `cannot hash its executable: ${(err as Error).message}`, err);
          }
          if (digest !== undefined) selectors.push(selector(`sha256:${digest}`));
        }
      }
      return selectors;
    },
  });
}

/**
 * The executable to describe: the one recorded when the caller connected, provided the process
 * still runs it (read now). Without a recording (an operator's `debug explain`), the current one.
 */
function executableOf(procRoot: string, peer: PeerCred): ExecutableIdentity {
  const recorded = peer.exe;
  if (recorded !== undefined && 'error' in recorded) {
    throw attestError(peer.pid, `its executable could not be read when it connected: ${recorded.error}`);
  }
  let current: ExecutableIdentity;
  try {
    current = readExecutable(procRoot, peer.pid);
  } catch (err) {
    throw attestError(peer.pid, `cannot read its executable path: ${(err as Error).message}`, err);
  }
  const exec = recorded === undefined ? undefined : execSince(recorded, current);
  if (exec !== undefined) throw attestError(peer.pid, `it ${exec}`);
  return current;
}

/** The `Groups:` line of /proc/<pid>/status: supplementary group IDs, space-separated. */
async function supplementaryGids(procDir: string, pid: number): Promise<number[]> {
  let status: string;
  try {
    // procfs is generated by the kernel on read (no disk I/O): a sync read beats a thread-pool round trip.
    status = readFileSync(path.join(procDir, 'status'), 'utf8');
  } catch (err) {
    throw attestError(pid, `cannot read its status: ${(err as Error).message}`, err);
  }
  const line = status.split('\n').find((l) => l.startsWith('Groups:'));
  if (line === undefined) return [];
  return line
    .slice('Groups:'.length)
    .trim()
    .split(/\s+/)
    .filter((g) => /^\d+$/.test(g))
    .map(Number);
}

function attestError(pid: number, rule: string, cause?: unknown): SigilError {
  return new SigilError('ERR_UNAVAILABLE', `unix attestor: process ${pid}: ${rule}`, {
    reason: isSigilError(cause) ? (cause.reason ?? 'proc') : 'proc',
    cause,
  });
}
