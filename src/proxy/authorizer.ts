// Adapts the policy engine (pure decisions) to the inbound Authorizer: the policy in force is
// whatever the watched file last parsed to; dry-run denials and audits are logged and counted here,
// never enforced.
import { Counter, type Registry } from 'prom-client';
import type { Authorizer } from './inbound/index.js';
import type { ProxyLogger } from './logger.js';
import { evaluate, type PolicySet } from './policy/index.js';

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
  return {
    authorize(request) {
      const decision = evaluate(current(), request);
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
      return {
        allow: decision.allow,
        reason: decision.reason,
        rule: decision.rule ? `${decision.rule.policy}#${decision.rule.index}` : null,
      };
    },
  };
}
