// The policy authorizer remembers decisions per policy set; these tests pin down that a reload
// still takes effect at once and that audits and dry-run denials are reported for every request.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { policyAuthorizer } from './authorizer.js';
import type { AuthorizationRequest } from './inbound/index.js';
import { type PolicySet, parsePolicyFile } from './policy/index.js';
import type { NormalizedPath } from './policy/normalize.js';
import { RecordingLogger } from './testing.test-support.js';

const CALLER = 'spiffe://example.org/caller';
const request: AuthorizationRequest = {
  principal: CALLER,
  port: 8080,
  protocol: 'http',
  method: 'GET',
  path: '/a' as NormalizedPath,
};

const allowCaller = parsePolicyFile(
  `policies:
  - name: callers
    action: ALLOW
    rules:
      - from: { principals: ["${CALLER}"] }
  - name: watch
    action: AUDIT
    rules:
      - to: { paths: ["/a"] }
  - name: next
    action: DENY
    dry_run: true
    rules:
      - to: { methods: ["GET"] }
`,
  'allow.yaml',
);
const denyCaller = parsePolicyFile(
  `policies:
  - name: lockdown
    action: DENY
    rules:
      - from: { principals: ["${CALLER}"] }
`,
  'deny.yaml',
);

describe('policyAuthorizer', () => {
  it('applies a new policy set on the next request, though the same request was decided before', () => {
    let policy: PolicySet = allowCaller;
    const authorizer = policyAuthorizer(() => policy, new Registry(), new RecordingLogger());
    expect(authorizer.authorize(request)).toMatchObject({ allow: true, rule: 'callers#0' });
    expect(authorizer.authorize(request)).toMatchObject({ allow: true, rule: 'callers#0' });
    policy = denyCaller;
    expect(authorizer.authorize(request)).toMatchObject({ allow: false, rule: 'lockdown#0' });
    // Another path is another request: not answered from what /a got.
    policy = allowCaller;
    expect(authorizer.authorize({ ...request, principal: 'spiffe://example.org/stranger' })).toMatchObject({
      allow: false,
      rule: null,
    });
  });

  it('logs and counts audits and dry-run denials for every request, remembered or not', async () => {
    const registry = new Registry();
    const logger = new RecordingLogger();
    const authorizer = policyAuthorizer(() => allowCaller, registry, logger);
    for (let i = 0; i < 3; i++) authorizer.authorize(request);
    expect(logger.find('Request audited')).toHaveLength(3);
    expect(logger.find('Dry-run policy would deny this request')).toHaveLength(3);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/sigil_proxy_authz_audits_total\{policy="watch"\} 3/);
    expect(metrics).toMatch(/sigil_proxy_authz_dry_run_denials_total\{policy="next"\} 3/);
  });
});
