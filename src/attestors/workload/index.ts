// Workload attestors by config name. Static list, no dynamic loading (STYLE §10): adding a plugin
// means adding a line here.
import { quote, SigilError } from '../../spiffe/errors.js';
import type { WorkloadAttestor } from './types.js';
import { createUnixAttestor, type UnixAttestorDeps } from './unix/index.js';

/** OS access the attestors may need; each takes the part it uses. */
export type WorkloadAttestorDeps = UnixAttestorDeps;

type Factory = (rawConfig: unknown, deps: WorkloadAttestorDeps) => WorkloadAttestor;

const FACTORIES: ReadonlyMap<string, Factory> = new Map([['unix', createUnixAttestor]]);

/** Validates `rawConfig` and builds the attestor; unknown names list the valid ones. */
export function createWorkloadAttestor(
  name: string,
  rawConfig: unknown,
  deps: WorkloadAttestorDeps = {},
): WorkloadAttestor {
  const factory = FACTORIES.get(name);
  if (!factory) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `workload attestor ${quote(name)} is unknown (valid: ${[...FACTORIES.keys()].join(', ')})`,
      { field: 'workload_attestors', reason: 'unknown-attestor' },
    );
  }
  return factory(rawConfig, deps);
}

export type { ExecutableIdentity, ExecutableUnknown } from './executable.js';
export { execSince, readExecutable } from './executable.js';
export type { PeerCred, WorkloadAttestor } from './types.js';
