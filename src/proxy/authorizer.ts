// Adapts the policy engine (pure decisions) to the inbound Authorizer: the policy in force is
// whatever the watched file last parsed to; dry-run denials and audits are logged and counted here,
// never enforced.
import { Counter, type Registry } from 'prom-client';
import type { AuthorizationDecision, Authorizer } from './inbound/index.js';
import type { ProxyLogger } from './logger.js';
import { type Decision, evaluate, needsRequestDetails, type PolicySet } from './policy/index.js';

/** Distinct requests whose decisions are remembered at most, per policy set in force. */
const MAX_REMEMBERED_DECISIONS = 4_096;

export function policyAuthorizer(
  current: () => PolicySet,
  registry: Registry,
  logger: ProxyLogger,
): Authorizer {
  const dryRun = new Counter({
    name: 'sigil_proxy_authz_dry_run_denials_total',
    help: 'Requests a dry-run policy would have denied (not enforced), by policy',
    labelNames: ['policy'],
    registers: [registry],
  });
  const audits = new Counter({
    name: 'sigil_proxy_authz_audits_total',
    help: 'Requests matched by AUDIT rules, by policy',
    labelNames: ['policy'],
    registers: [registry],
  });
  // Decisions are a pure function of the policy set and the request, and a service sees the same
  // few (caller, method, path) combinations over and over; remembering them saves most of the
  // per-request policy work. What a decision reports (dry-run denials, audits) is still logged and
  // counted for every request.
  let rememberedFor: PolicySet | undefined;
  const remembered = new Map<string, { decision: Decision; result: AuthorizationDecision }>();
  return {
    authorize(request) {
      const set = current();
      if (set !== rememberedFor) {
        remembered.clear();
        rememberedFor = set;
      }
      const key = `${request.principal}\n${request.port}\n${request.protocol}\n${request.method}\n${request.path}`;
      let known = remembered.get(key);
      if (known === undefined) {
        const decision = evaluate(set, request);
        const rule = decision.rule ? `${decision.rule.policy}#${decision.rule.index}` : null;
        known = { decision, result: { allow: decision.allow, reason: decision.reason, rule } };
        if (remembered.size >= MAX_REMEMBERED_DECISIONS) remembered.clear();
        remembered.set(key, known);
      }
      const { decision } = known;
      for (const denial of decision.dryRunDenials) {
        dryRun.inc({ policy: denial.policy });
        logger.warn(
          { source_id: request.principal, policy: denial.policy, port: request.port, path: request.path },
          'Dry-run policy would deny this request',
        );
      }
      for (const audit of decision.audits) {
        audits.inc({ policy: audit.policy });
        logger.info(
          { source_id: request.principal, policy: audit.policy, rule: audit.index, path: request.path },
          'Request audited',
        );
      }
      return known.result;
    },
    needsRequestDetails: (port) => needsRequestDetails(current(), port),
  };
}
