// Decides whether a request is allowed; pure, so inbound/authorize.ts enforces, logs and counts
// (STYLE.md §11). Istio's order: a matching DENY denies; otherwise, if any ALLOW policy exists, a
// matching ALLOW rule is required; otherwise allow. AUDIT rules are reported and never decide.
// Dry-run policies are evaluated alongside but only reported, as would-be denials.
//
// Opaque TCP (and HTTP requests lacking a method or path) cannot be checked against `methods` or
// `paths`. An ALLOW or AUDIT rule that needs them does not match, as in Istio. A DENY rule that
// needs them matches on its other conditions alone: Istio turns it into deny-all for TCP, which
// denies callers the rule never named; we keep its principals and ports, failing closed only as
// wide as the rule itself.
import { type Caller, callerOf, principalMatches } from './match.js';
import type {
  AuthzRequest,
  Decision,
  DryRunDenial,
  PolicyAction,
  PolicyRule,
  PolicySet,
  RuleRef,
} from './model.js';
import type { NormalizedPath } from './normalize.js';
import { pathMatches } from './path-pattern.js';

interface RequestView {
  readonly caller: Caller | null;
  readonly port: number;
  /** Undefined when unknown: TCP, or HTTP without a method. */
  readonly method: string | undefined;
  /** Undefined when unknown: TCP, HTTP without a path, or the asterisk form (`OPTIONS *`). */
  readonly path: NormalizedPath | undefined;
}

export function evaluate(set: PolicySet, request: AuthzRequest): Decision {
  const isHttp = request.protocol === 'http';
  const view: RequestView = {
    caller: callerOf(request.principal),
    port: request.port,
    method: isHttp ? request.method : undefined,
    path: isHttp ? (request.path ?? undefined) : undefined,
  };

  let deny: RuleRef | null = null;
  let allow: RuleRef | null = null;
  let hasEnforcedAllow = false;
  let anyAllowMatched = false;
  const audits: RuleRef[] = [];
  const dryRunDenyRules: DryRunDenial[] = [];
  const unmatchedDryRunAllows: DryRunDenial[] = [];

  for (const policy of set.policies) {
    if (policy.action === 'ALLOW' && !policy.dryRun) hasEnforcedAllow = true;
    // At most one entry per policy: its first matching rule.
    const rule = policy.rules.find((r) => ruleMatches(r, policy.action, view));
    if (rule === undefined) {
      if (policy.action === 'ALLOW' && policy.dryRun) {
        unmatchedDryRunAllows.push({ policy: policy.name, index: null, action: 'ALLOW' });
      }
      continue;
    }
    const ref: RuleRef = { policy: policy.name, index: rule.index, action: policy.action };
    if (policy.action === 'AUDIT') audits.push(ref);
    else if (policy.action === 'DENY') {
      if (policy.dryRun) dryRunDenyRules.push({ policy: policy.name, index: rule.index, action: 'DENY' });
      else deny ??= ref;
    } else {
      anyAllowMatched = true;
      if (!policy.dryRun) allow ??= ref;
    }
  }

  if (deny !== null) {
    return decision(false, deny, `${describeRule(deny)} matched`, audits, []);
  }
  if (hasEnforcedAllow && allow === null) {
    return decision(false, null, 'default deny: no ALLOW rule matched', audits, []);
  }
  // Allowed. Would enforcing the dry-run policies have denied it? A dry-run ALLOW policy denies
  // by default only when no ALLOW rule at all (enforced or dry-run) matched.
  const dryRunDenials = anyAllowMatched ? dryRunDenyRules : [...dryRunDenyRules, ...unmatchedDryRunAllows];
  const reason = allow !== null ? `${describeRule(allow)} matched` : 'no ALLOW policy: allowed by default';
  return decision(true, allow, reason, audits, dryRunDenials);
}

/**
 * Whether some rule that applies to `port` looks at the HTTP method or path. A connection that
 * is only known as a byte stream cannot be decided under such a policy, so the proxy must see
 * its requests one by one. Dry-run and AUDIT rules count too: they report per request.
 */
export function needsRequestDetails(set: PolicySet, port: number): boolean {
  return set.policies.some((policy) =>
    policy.rules.some(
      ({ to }) =>
        (to?.methods !== undefined || to?.paths !== undefined) && (!to.ports || to.ports.includes(port)),
    ),
  );
}

/** `policy "name" rule #0 (DENY)`: rules count from 0, as in `policies[i].rules[0]` of errors. */
export function describeRule(ref: { policy: string; index: number | null; action: PolicyAction }): string {
  const rule = ref.index === null ? '' : ` rule #${ref.index}`;
  return `policy ${JSON.stringify(ref.policy)}${rule} (${ref.action})`;
}

function decision(
  allow: boolean,
  rule: RuleRef | null,
  reason: string,
  audits: RuleRef[],
  dryRunDenials: DryRunDenial[],
): Decision {
  return { allow, enforced: dryRunDenials.length === 0, rule, reason, audits, dryRunDenials };
}

function ruleMatches(rule: PolicyRule, action: PolicyAction, request: RequestView): boolean {
  const { from, to } = rule;
  if (from?.principals && !from.principals.some((p) => principalMatches(p, request.caller))) return false;
  if (from?.notPrincipals?.some((p) => principalMatches(p, request.caller))) return false;
  if (to?.ports && !to.ports.includes(request.port)) return false;
  // See the module comment: an unknown HTTP attribute fails an ALLOW/AUDIT condition and
  // satisfies a DENY one.
  const unknownMatches = action === 'DENY';
  if (to?.methods) {
    const { method } = request;
    if (method === undefined ? !unknownMatches : !to.methods.includes(method)) return false;
  }
  if (to?.paths) {
    const { path } = request;
    if (path === undefined ? !unknownMatches : !to.paths.some((p) => pathMatches(p, path))) return false;
  }
  return true;
}
