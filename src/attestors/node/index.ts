// Node attestors by config name. A static table, no dynamic loading: each name maps to the factory of
// its server half and of its agent half, and each factory validates its config with the same code that
// builds the attestor from it.
import { quote, SigilError } from '../../spiffe/errors.js';
import { createJoinTokenAgent } from './join-token/agent.js';
import { createJoinTokenServer } from './join-token/server.js';
import { createK8sSatAgent } from './k8s-sat/agent.js';
import { createK8sSatServer } from './k8s-sat/server.js';
import type { NodeAttestorAgent, NodeAttestorServer, NodeAttestorServerDeps } from './types.js';
import { createX509PopAgent } from './x509pop/agent.js';
import { createX509PopServer } from './x509pop/server.js';

export const NODE_ATTESTOR_NAMES = ['join_token', 'x509pop', 'k8s_sat'] as const;
export type NodeAttestorName = (typeof NODE_ATTESTOR_NAMES)[number];

/**
 * Builds the server half of attestor `name` from its raw config (the YAML/JSON mapping under
 * `field`). Files named in the config are read now. Throws ERR_CONFIG_INVALID listing every problem
 * by dotted path, or naming the valid attestors when `name` is unknown.
 */
export function createNodeAttestorServer(
  name: string,
  rawConfig: unknown,
  deps: NodeAttestorServerDeps,
  field = `node_attestors.${name}`,
): NodeAttestorServer {
  switch (checkName(name, field)) {
    case 'join_token':
      return createJoinTokenServer(rawConfig, deps, field);
    case 'x509pop':
      return createX509PopServer(rawConfig, field);
    case 'k8s_sat':
      return createK8sSatServer(rawConfig, field);
  }
}

/** Builds the agent half of attestor `name`; same error contract as createNodeAttestorServer. */
export function createNodeAttestorAgent(
  name: string,
  rawConfig: unknown,
  field = `node_attestors.${name}`,
): NodeAttestorAgent {
  switch (checkName(name, field)) {
    case 'join_token':
      return createJoinTokenAgent(rawConfig, field);
    case 'x509pop':
      return createX509PopAgent(rawConfig, field);
    case 'k8s_sat':
      return createK8sSatAgent(rawConfig, field);
  }
}

function checkName(name: string, field: string): NodeAttestorName {
  if ((NODE_ATTESTOR_NAMES as readonly string[]).includes(name)) return name as NodeAttestorName;
  throw new SigilError(
    'ERR_CONFIG_INVALID',
    `${field}: unknown node attestor ${quote(name)} (valid: ${NODE_ATTESTOR_NAMES.join(', ')})`,
    { field, reason: 'unknown-attestor' },
  );
}

export { refuseUnknownJoinToken } from './join-token/server.js';
export type {
  JoinTokenReader,
  NodeAttestation,
  NodeAttestContext,
  NodeAttestorAgent,
  NodeAttestorServer,
  NodeAttestorServerDeps,
} from './types.js';
