// Configuration of the `unix` workload attestor, validated by the same function that configures it
// (STYLE §7), so a config check and an agent start cannot disagree. Every problem is reported at
// once, by key, with the value found; unknown keys are errors (a typo must not silently disable a check).
import { quote, SigilError } from '../../../spiffe/errors.js';

export interface UnixAttestorConfig {
  /** Emit `unix:path` and `unix:sha256` selectors. Defaults to true. */
  readonly discoverWorkloadPath: boolean;
  /** Binaries larger than this many bytes get no `unix:sha256` selector; 0 disables hashing. Defaults to 64 MiB. */
  readonly workloadSizeLimitBytes: number;
}

/** Hashing reads the whole binary on a cache miss; this bounds the I/O one attestation can cause. */
export const DEFAULT_WORKLOAD_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

const KNOWN_KEYS = ['discover_workload_path', 'workload_size_limit'];

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
  if (problems.length > 0) throw configError(problems);
  return Object.freeze({
    discoverWorkloadPath: discover as boolean,
    workloadSizeLimitBytes: limit as number,
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
