import { describe, expect, it } from 'vitest';
import { isSigilError } from '../../spiffe/errors.js';
import { compilePolicyDocument, parsePolicyFile } from './parse.js';

const VALID = `
trust_domains: [example.org, spiffe://other.org]
policies:
  - name: deny-admin
    action: DENY
    rules:
      - to: { paths: [/admin/*] }
  - name: allow-web
    action: ALLOW
    dry_run: true
    rules:
      - from: { principals: ["spiffe://example.org/ns/web/*"], not_principals: [spiffe://example.org/ns/web/bad] }
        to: { ports: [8080], methods: [GET], paths: [/api/*, /u/*/edit, /exact] }
      - {}
`;

/** Parses `policies: [<policy>]` with one rule, so each case names only what it breaks. */
function rule(yamlRule: string): string {
  return `policies:\n  - name: p\n    action: ALLOW\n    rules:\n      - ${yamlRule}\n`;
}

function parseError(text: string) {
  try {
    parsePolicyFile(text, 'policy.yaml');
  } catch (err) {
    if (isSigilError(err, 'ERR_POLICY_INVALID')) return err;
    throw err;
  }
  throw new Error('expected ERR_POLICY_INVALID');
}

describe('parsePolicyFile', () => {
  it('compiles a valid file into a frozen set', () => {
    const set = parsePolicyFile(VALID, 'policy.yaml');
    expect(set.source).toBe('policy.yaml');
    expect(set.trustDomains).toEqual(['example.org', 'other.org']);
    expect(set.policies.map((p) => [p.name, p.action, p.dryRun])).toEqual([
      ['deny-admin', 'DENY', false],
      ['allow-web', 'ALLOW', true],
    ]);
    const allow = set.policies[1]!.rules[0]!;
    expect(allow.index).toBe(0);
    expect(allow.from?.principals?.[0]).toMatchObject({
      kind: 'prefix',
      trustDomain: 'example.org',
      path: '/ns/web',
    });
    expect(allow.from?.notPrincipals?.[0]).toMatchObject({ kind: 'exact', path: '/ns/web/bad' });
    expect(allow.to?.ports).toEqual([8080]);
    expect(allow.to?.paths?.map((p) => p.kind)).toEqual(['prefix', 'glob', 'exact']);
    expect(set.policies[1]!.rules[1]).toEqual({ index: 1 });
    expect(Object.isFrozen(set)).toBe(true);
    expect(Object.isFrozen(set.policies[1]!.rules[0]!.to!.ports)).toBe(true);
    expect(() => (set.policies as unknown[]).push({})).toThrow(TypeError);
  });

  it('accepts an empty policy list', () => {
    expect(parsePolicyFile('policies: []', 'p.yaml').policies).toEqual([]);
    expect(parsePolicyFile('trust_domains: []\npolicies: []', 'p.yaml').trustDomains).toEqual([]);
  });

  it('classifies principal patterns', () => {
    const set = parsePolicyFile(
      rule(
        'from: { principals: ["*", "spiffe://example.org", "spiffe://example.org/*", spiffe://example.org/a/*] }',
      ),
      'p',
    );
    expect(set.policies[0]!.rules[0]!.from!.principals!.map((p) => p.kind)).toEqual([
      'any',
      'domain',
      'domain',
      'prefix',
    ]);
  });

  const bad: Array<[string, string, string]> = [
    [
      'path without a leading slash',
      rule('to: { paths: ["api/*"] }'),
      'policies[0].rules[0].to.paths[0]: "api/*" must start with "/"',
    ],
    [
      'unknown top-level key',
      'polices: []\npolicies: []',
      'polices: unknown key (known keys: policies, trust_domains)',
    ],
    [
      'unknown policy key',
      'policies: [{ name: p, action: DENY, dryrun: true, rules: [{}] }]',
      'policies[0].dryrun: unknown key',
    ],
    [
      'unknown rule key',
      rule('form: { principals: ["*"] }'),
      'policies[0].rules[0].form: unknown key (known keys: from, to)',
    ],
    [
      'unknown from key',
      rule('from: { principal: ["*"] }'),
      'policies[0].rules[0].from.principal: unknown key',
    ],
    [
      'lowercase action',
      'policies: [{ name: p, action: allow, rules: [{}] }]',
      'policies[0].action: must be one of ALLOW, DENY, AUDIT (got "allow")',
    ],
    ['missing action', 'policies: [{ name: p, rules: [{}] }]', 'policies[0].action: is required'],
    ['missing name', 'policies: [{ action: DENY, rules: [{}] }]', 'policies[0].name: is required'],
    [
      'bad name',
      'policies: [{ name: "a b", action: DENY, rules: [{}] }]',
      'policies[0].name: must be 1-63 letters',
    ],
    [
      'duplicate policy names',
      'policies: [{ name: a, action: DENY, rules: [{}] }, { name: a, action: ALLOW, rules: [{}] }]',
      'policies[1].name: "a" is already used by policies[0]',
    ],
    [
      'principal without the scheme',
      rule('from: { principals: [example.org/web] }'),
      'policies[0].rules[0].from.principals[0]: SPIFFE ID "example.org/web" must start with "spiffe://"',
    ],
    [
      'principal with "*" inside',
      rule('from: { principals: ["spiffe://example.org/*/web"] }'),
      'policies[0].rules[0].from.principals[0]: "spiffe://example.org/*/web": "*" is allowed only',
    ],
    [
      'not_principal with a bad trust domain',
      rule('from: { not_principals: ["spiffe://Example.org/x"] }'),
      'policies[0].rules[0].from.not_principals[0]: SPIFFE ID "spiffe://Example.org/x" trust domain may contain only',
    ],
    [
      'port out of range',
      rule('to: { ports: [70000] }'),
      'policies[0].rules[0].to.ports[0]: must be a port number from 1 to 65535 (got 70000)',
    ],
    [
      'port as a string',
      rule('to: { ports: ["80"] }'),
      'policies[0].rules[0].to.ports[0]: must be a port number from 1 to 65535 (got "80")',
    ],
    [
      'repeated port',
      rule('to: { ports: [80, 80] }'),
      'policies[0].rules[0].to.ports[1]: 80 repeats policies[0].rules[0].to.ports[0]',
    ],
    [
      'lowercase method',
      rule('to: { methods: [get] }'),
      'policies[0].rules[0].to.methods[0]: methods are uppercase (got "get"; write "GET")',
    ],
    [
      '"*" method',
      rule('to: { methods: ["*"] }'),
      'policies[0].rules[0].to.methods[0]: "*" is not a method; omit methods',
    ],
    [
      'empty principals list',
      rule('from: { principals: [] }'),
      'policies[0].rules[0].from.principals: must not be empty; omit "principals" to match any',
    ],
    ['ports not a list', rule('to: { ports: 80 }'), 'policies[0].rules[0].to.ports: must be a list (got 80)'],
    ['empty from', rule('from: {}'), 'policies[0].rules[0].from: must set principals or not_principals'],
    [
      'to that is not a mapping',
      rule('to: [80]'),
      'policies[0].rules[0].to: must be a mapping with ports and/or methods and/or paths',
    ],
    [
      'empty rules',
      'policies: [{ name: p, action: ALLOW, rules: [] }]',
      'policies[0].rules: must be a non-empty list of rules (got [])',
    ],
    [
      'missing rules',
      'policies: [{ name: p, action: ALLOW }]',
      'policies[0].rules: is required (to match every request, write "rules: [{}]")',
    ],
    [
      'dry_run not a boolean',
      'policies: [{ name: p, action: DENY, dry_run: "yes", rules: [{}] }]',
      'policies[0].dry_run: must be true or false (got "yes")',
    ],
    [
      'partial "**"',
      rule('to: { paths: ["/a**"] }'),
      'policies[0].rules[0].to.paths[0]: "/a**": "**" must be a whole segment',
    ],
    [
      'path pattern past the length limit',
      rule(`to: { paths: ["/${'a'.repeat(1_100)}"] }`),
      'is 1101 characters long; at most 1024',
    ],
    [
      'path pattern with too many "**"',
      rule(`to: { paths: ["/${Array(17).fill('**').join('/')}"] }`),
      'has 17 "**" segments; at most 16',
    ],
    [
      'path with a query',
      rule('to: { paths: ["/a?b=1"] }'),
      'policies[0].rules[0].to.paths[0]: "/a?b=1" must not contain "?" or "#"',
    ],
    [
      'path with a space',
      rule('to: { paths: ["/a b"] }'),
      'policies[0].rules[0].to.paths[0]: "/a b" must not contain whitespace',
    ],
    [
      'bad trust domain',
      'trust_domains: [Example.org]\npolicies: []',
      'trust_domains[0]: trust domain "Example.org" trust domain may contain only',
    ],
    ['policies not a list', 'policies: { name: p }', 'policies: must be a list of policies'],
    ['missing policies', 'trust_domains: [example.org]', 'policies: is required'],
    ['empty file', '', '(file): is empty'],
    ['not a mapping', '- a\n- b', '(file): must be a mapping'],
    [
      'policy not a mapping',
      'policies: [deny-all]',
      'policies[0]: must be a mapping with name, action and rules (got "deny-all")',
    ],
    ['invalid YAML', 'policies: [', 'policy file policy.yaml is not valid YAML'],
    ['duplicate YAML keys', 'policies: []\npolicies: []', 'is not valid YAML'],
  ];

  it.each(bad)('rejects %s', (_name, text, expected) => {
    expect(parseError(text).message).toContain(expected);
  });

  it('reports every problem at once, counted, one per line', () => {
    const err = parseError(`
bogus: 1
policies:
  - name: a
    action: DENY
    rules: [{ to: { paths: [x], ports: [0] } }]
  - name: a
    action: ALLOW
    rules: [{}]
`);
    expect(err.message.split('\n')).toEqual([
      'policy file policy.yaml has 4 problems',
      '  bogus: unknown key (known keys: policies, trust_domains)',
      '  policies[0].rules[0].to.ports[0]: must be a port number from 1 to 65535 (got 0)',
      '  policies[0].rules[0].to.paths[0]: "x" must start with "/"',
      '  policies[1].name: "a" is already used by policies[0]',
    ]);
  });

  it('compiles an already-parsed document under the given source', () => {
    const set = compilePolicyDocument(
      { policies: [{ name: 'p', action: 'DENY', rules: [{}] }] },
      'proxy.yaml',
    );
    expect(set.source).toBe('proxy.yaml');
    expect(() => compilePolicyDocument({ policies: 1 }, 'proxy.yaml')).toThrow(/proxy\.yaml has 1 problem\n/);
  });
});
