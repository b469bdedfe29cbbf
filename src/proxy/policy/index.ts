// Authorization policy: parse, evaluate (pure), lint, hot reload and the `policy` CLI commands.
// inbound/authorize.ts enforces what evaluate decides.

export type { PolicyCliIo } from './check-cli.js';
export { policyCommand } from './check-cli.js';
export { evaluate, needsRequestDetails } from './evaluate.js';
export type { LintCode, LintFinding, LintOptions } from './lint.js';
export { lintPolicySet } from './lint.js';
export type {
  AuthzRequest,
  Decision,
  DryRunDenial,
  PathPattern,
  Policy,
  PolicyAction,
  PolicyRule,
  PolicySet,
  PrincipalPattern,
  RuleRef,
  RuleSource,
  RuleTarget,
} from './model.js';
export { compilePolicyDocument, parsePolicyFile } from './parse.js';
export type { PolicyReloadLogger, PolicyWatch, WatchPolicyOptions } from './reload.js';
export { watchPolicyFile } from './reload.js';
