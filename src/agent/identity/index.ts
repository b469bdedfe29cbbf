// The agent's own identity: its SVID's renewal, re-attestation, the bundle it starts with, and the
// health verdict built from them.

export type {
  AgentIdentityOptions,
  AttestationEvidence,
  IdentityConnection,
  IdentityHealth,
} from './agent-identity.js';
export { AgentIdentity } from './agent-identity.js';
export { attestUntilAccepted } from './first-attestation.js';
export type { AgentHealth, AgentHealthFacts, AgentHealthStatus } from './health.js';
export { assessAgentHealth } from './health.js';
export type { ServerFailureKind } from './server-failure.js';
export { classifyServerFailure, describeServerFailure, staleBundleMessage } from './server-failure.js';
export { loadStartBundle } from './start-bundle.js';
