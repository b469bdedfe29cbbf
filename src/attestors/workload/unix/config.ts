// Configuration of the `unix` workload attestor, validated by the same function that configures it
// (STYLE §7), so a config check and an agent start cannot disagree. Every problem is reported at
// once, by key, with the value found; unknown keys are errors (a typo must not silently disable a check).
import { parseDurationMs } from '../../../spiffe/duration.js';
import { quote, SigilError } from '../../../spiffe/errors.js';

export interface UnixAttestorConfig {
  /** Emit `unix:path` and `unix:sha256` selectors. Defaults to true. */
  readonly discoverWorkloadPath: boolean;
  /** Binaries larger than this many bytes get no `unix:sha256` selector; 0 disables hashing. Defaults to 64 MiB. */
  readonly workloadSizeLimitBytes: number;
  /** A binary whose content key changed is hashed again at most this often. Defaults to 30 s. */
  readonly rehashIntervalMs: number;
  /** Bytes per second all hashing may read, averaged (burst: 16 s of it). Defaults to 32 MiB/s. */
  readonly hashRateLimitBytesPerSecond: number;
}

/** Hashing reads the whole binary on a cache miss; this bounds the I/O one attestation can cause. */
export const DEFAULT_WORKLOAD_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
/**
 * A binary is replaced by installing a new file (a new inode, hashed at once); the same inode
 * changing again and again is someone touching it to make us re-read it (25x the agent's CPU with
 * a large binary before this bound). 30 s caps that at one read per binary per half minute.
 */
export const DEFAULT_REHASH_INTERVAL_MS = 30_000;
/** SHA-256 runs at roughly 0.5–2 GB/s per core: 32 MiB/s keeps hashing to a few % of one core. */
export const DEFAULT_HASH_RATE_LIMIT_BYTES_PER_SECOND = 32 * 1024 * 1024;
/** The budget holds this many seconds of the rate (512 MiB by default), so a node's start-up burst of distinct binaries is hashed at once. */
export const HASH_BURST_SECONDS = 16;

const KNOWN_KEYS = ['discover_workload_path', 'workload_size_limit', 'rehash_interval', 'hash_rate_limit'];

export function parseUnixAttestorConfig(raw: unknown): UnixAttestorConfig {
  const input = raw ?? {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw configError([`(root): must be an object (got ${quote(input)})`]);
  }
  const record = input as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(record)) {
    if (!KNOWN_KEYS.includes(key)) {
      problems.push(`${key}: unknown key (valid: ${KNOWN_KEYS.join(', ')})`);
    }
  }
  const discover = record.discover_workload_path ?? true;
  if (typeof discover !== 'boolean') {
    problems.push(`discover_workload_path: must be true or false (got ${quote(discover)})`);
  }
  const limit = record.workload_size_limit ?? DEFAULT_WORKLOAD_SIZE_LIMIT_BYTES;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
    problems.push(`workload_size_limit: must be a whole number of bytes, 0 or more (got ${quote(limit)})`);
  }
  let rehashIntervalMs = DEFAULT_REHASH_INTERVAL_MS;
  if (record.rehash_interval !== undefined) {
    try {
      rehashIntervalMs = parseDurationMs(record.rehash_interval as string | number, 'rehash_interval');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const rate = record.hash_rate_limit ?? DEFAULT_HASH_RATE_LIMIT_BYTES_PER_SECOND;
  if (typeof rate !== 'number' || !Number.isSafeInteger(rate) || rate < 1) {
    problems.push(
      `hash_rate_limit: must be a whole number of bytes per second, 1 or more (got ${quote(rate)})`,
    );
  }
  if (problems.length > 0) throw configError(problems);
  return Object.freeze({
    discoverWorkloadPath: discover as boolean,
    workloadSizeLimitBytes: limit as number,
    rehashIntervalMs,
    hashRateLimitBytesPerSecond: rate as number,
  });
}

function configError(problems: string[]): SigilError {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new SigilError(
    'ERR_CONFIG_INVALID',
    `workload attestor "unix": config has ${count}\n${problems.map((p) => `  ${p}`).join('\n')}`,
    { field: 'workload_attestor.unix', reason: 'config' },
  );
}
