// Turns a policy file (YAML) into a validated, compiled, deep-frozen PolicySet. Every problem is
// collected and reported at once by dotted path, so an operator fixes the file in one go; unknown
// keys are errors because a misspelt `not_principals` would otherwise silently widen a rule.
// Lint-level concerns (rules that can never match, overlaps) are left to lint.ts.
import { parse as parseYaml } from 'yaml';
import { quote, SigilError } from '../../spiffe/errors.js';
import { parseTrustDomain } from '../../spiffe/id.js';
import { compilePrincipalPattern, showValue } from './match.js';
import type {
  PathPattern,
  Policy,
  PolicyAction,
  PolicyRule,
  PolicySet,
  PrincipalPattern,
  RuleSource,
  RuleTarget,
} from './model.js';
import { compilePathPattern } from './path-pattern.js';

const ACTIONS: readonly PolicyAction[] = ['ALLOW', 'DENY', 'AUDIT'];
/** Names end up in logs and metric labels: keep them short and shell/label friendly. */
const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** An HTTP method is an RFC 9110 token; we require uppercase, as sent by every common client. */
const METHOD_TOKEN = /^[A-Z0-9!#$%&'*+.^_`|~-]+$/;
const MAX_PORT = 65_535;

type Raw = Record<string, unknown>;

/** Parses and compiles a policy file. Throws ERR_POLICY_INVALID listing every problem. */
export function parsePolicyFile(text: string, source: string): PolicySet {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new SigilError('ERR_POLICY_INVALID', `policy file ${source} is not valid YAML: ${detail}`, {
      reason: 'yaml',
      cause: err,
    });
  }
  return compilePolicyDocument(raw, source);
}

/**
 * Compiles an already-parsed document (`{ policies, trust_domains? }`), for configs that embed
 * policies inline. `source` names it in messages.
 */
export function compilePolicyDocument(raw: unknown, source: string): PolicySet {
  const problems: string[] = [];
  const check = new Checker(problems);
  let policies: Policy[] = [];
  let trustDomains: string[] = [];
  if (raw === null || raw === undefined) {
    problems.push('(file): is empty; expected a mapping with a "policies" list');
  } else if (!isMapping(raw)) {
    problems.push(`(file): must be a mapping with a "policies" list (got ${showValue(raw)})`);
  } else {
    check.unknownKeys(raw, '', ['policies', 'trust_domains']);
    // An empty trust_domains list is harmless (it declares none), unlike an empty rule list.
    const declared =
      Array.isArray(raw.trust_domains) && raw.trust_domains.length === 0 ? undefined : raw.trust_domains;
    trustDomains = check.list(declared, 'trust_domains', (v, at) =>
      check.capture(() => parseTrustDomain(v as string, at).name),
    );
    if (raw.policies === undefined) problems.push('policies: is required (a list of policies)');
    else policies = compilePolicies(raw.policies, check);
  }
  if (problems.length > 0) {
    const noun = problems.length === 1 ? 'problem' : 'problems';
    throw new SigilError(
      'ERR_POLICY_INVALID',
      `policy file ${source} has ${problems.length} ${noun}\n${problems.map((p) => `  ${p}`).join('\n')}`,
      { reason: 'policy' },
    );
  }
  return deepFreeze({ source, policies, trustDomains });
}

function compilePolicies(raw: unknown, check: Checker): Policy[] {
  if (!Array.isArray(raw)) {
    check.problem('policies', `must be a list of policies (got ${showValue(raw)})`);
    return [];
  }
  const firstByName = new Map<string, number>();
  const policies: Policy[] = [];
  raw.forEach((entry, i) => {
    const at = `policies[${i}]`;
    if (!isMapping(entry)) {
      check.problem(at, `must be a mapping with name, action and rules (got ${showValue(entry)})`);
      return;
    }
    check.unknownKeys(entry, at, ['name', 'action', 'dry_run', 'rules']);
    const name = compileName(entry.name, `${at}.name`, check);
    if (name !== null) {
      const first = firstByName.get(name);
      if (first !== undefined)
        check.problem(`${at}.name`, `${quote(name)} is already used by policies[${first}]`);
      else firstByName.set(name, i);
    }
    const action = compileAction(entry.action, `${at}.action`, check);
    let dryRun = false;
    if (entry.dry_run !== undefined) {
      if (typeof entry.dry_run === 'boolean') dryRun = entry.dry_run;
      else check.problem(`${at}.dry_run`, `must be true or false (got ${showValue(entry.dry_run)})`);
    }
    const rules = compileRules(entry.rules, `${at}.rules`, check);
    if (name !== null && action !== null) policies.push({ name, action, dryRun, rules });
  });
  return policies;
}

function compileName(raw: unknown, at: string, check: Checker): string | null {
  if (raw === undefined) {
    check.problem(at, 'is required');
    return null;
  }
  if (typeof raw !== 'string' || !POLICY_NAME.test(raw)) {
    check.problem(
      at,
      `must be 1-63 letters, digits, ".", "-" or "_", starting with a letter or digit (got ${showValue(raw)})`,
    );
    return null;
  }
  return raw;
}

function compileAction(raw: unknown, at: string, check: Checker): PolicyAction | null {
  if (raw === undefined) {
    check.problem(at, `is required (one of ${ACTIONS.join(', ')})`);
    return null;
  }
  if (!ACTIONS.includes(raw as PolicyAction)) {
    check.problem(at, `must be one of ${ACTIONS.join(', ')} (got ${showValue(raw)})`);
    return null;
  }
  return raw as PolicyAction;
}

function compileRules(raw: unknown, at: string, check: Checker): PolicyRule[] {
  if (raw === undefined) {
    check.problem(at, 'is required (to match every request, write "rules: [{}]")');
    return [];
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    // Istio reads an empty ALLOW as "allow nothing"; we make the author spell out what they mean.
    check.problem(
      at,
      `must be a non-empty list of rules (got ${showValue(raw)}); to match every request, write "rules: [{}]"`,
    );
    return [];
  }
  return raw.map((entry, index) => {
    const ruleAt = `${at}[${index}]`;
    if (entry === null || (isMapping(entry) && Object.keys(entry).length === 0)) return { index };
    if (!isMapping(entry)) {
      check.problem(ruleAt, `must be a mapping with from and/or to (got ${showValue(entry)})`);
      return { index };
    }
    check.unknownKeys(entry, ruleAt, ['from', 'to']);
    const rule: { index: number; from?: RuleSource; to?: RuleTarget } = { index };
    if (entry.from !== undefined) rule.from = compileSource(entry.from, `${ruleAt}.from`, check);
    if (entry.to !== undefined) rule.to = compileTarget(entry.to, `${ruleAt}.to`, check);
    return rule;
  });
}

function compileSource(raw: unknown, at: string, check: Checker): RuleSource {
  const keys = ['principals', 'not_principals'];
  if (!check.nonEmptyMapping(raw, at, keys)) return {};
  const source: { principals?: PrincipalPattern[]; notPrincipals?: PrincipalPattern[] } = {};
  const compile = (v: unknown, field: string) => check.capture(() => compilePrincipalPattern(v, field));
  if (raw.principals !== undefined) {
    source.principals = check.list(raw.principals, `${at}.principals`, compile, (p) => p.text);
  }
  if (raw.not_principals !== undefined) {
    source.notPrincipals = check.list(raw.not_principals, `${at}.not_principals`, compile, (p) => p.text);
  }
  return source;
}

function compileTarget(raw: unknown, at: string, check: Checker): RuleTarget {
  const keys = ['ports', 'methods', 'paths'];
  if (!check.nonEmptyMapping(raw, at, keys)) return {};
  const target: { ports?: number[]; methods?: string[]; paths?: PathPattern[] } = {};
  if (raw.ports !== undefined) {
    target.ports = check.list(raw.ports, `${at}.ports`, (v, field) => {
      if (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_PORT) return v as number;
      check.problem(field, `must be a port number from 1 to ${MAX_PORT} (got ${showValue(v)})`);
      return null;
    });
  }
  if (raw.methods !== undefined) {
    target.methods = check.list(raw.methods, `${at}.methods`, (v, field) => {
      if (typeof v === 'string' && METHOD_TOKEN.test(v) && v !== '*') return v;
      if (v === '*') check.problem(field, '"*" is not a method; omit methods to match any method');
      else if (typeof v === 'string' && METHOD_TOKEN.test(v.toUpperCase())) {
        check.problem(field, `methods are uppercase (got ${showValue(v)}; write ${quote(v.toUpperCase())})`);
      } else check.problem(field, `must be an HTTP method such as GET (got ${showValue(v)})`);
      return null;
    });
  }
  if (raw.paths !== undefined) {
    target.paths = check.list(
      raw.paths,
      `${at}.paths`,
      (v, field) => check.capture(() => compilePathPattern(v, field)),
      (p) => p.text,
    );
  }
  return target;
}

/** Collects problems instead of throwing at the first. */
class Checker {
  constructor(private readonly problems: string[]) {}

  problem(at: string, message: string): void {
    this.problems.push(`${at}: ${message}`);
  }

  unknownKeys(raw: Raw, at: string, known: readonly string[]): void {
    for (const key of Object.keys(raw)) {
      if (!known.includes(key)) {
        const where = at === '' ? key : `${at}.${key}`;
        this.problems.push(`${where}: unknown key (known keys: ${known.join(', ')})`);
      }
    }
  }

  /** A mapping holding at least one of `keys` and nothing else. */
  nonEmptyMapping(raw: unknown, at: string, keys: readonly string[]): raw is Raw {
    if (!isMapping(raw)) {
      this.problem(at, `must be a mapping with ${keys.join(' and/or ')} (got ${showValue(raw)})`);
      return false;
    }
    this.unknownKeys(raw, at, keys);
    if (!keys.some((k) => raw[k] !== undefined)) {
      this.problem(at, `must set ${keys.join(' or ')} (omit "${at.split('.').pop()}" to match anything)`);
    }
    return true;
  }

  /**
   * A list whose entries `item` compiles (null: already reported); duplicates are reported. An
   * empty list is an error: Istio reads it as "unset", which a reader may well take for "none".
   */
  list<T>(
    raw: unknown,
    at: string,
    item: (value: unknown, at: string) => T | null,
    key: (value: T) => unknown = (v) => v,
  ): T[] {
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) {
      this.problem(at, `must be a list (got ${showValue(raw)})`);
      return [];
    }
    if (raw.length === 0) {
      this.problem(at, `must not be empty; omit "${at.split('.').pop()}" to match any`);
      return [];
    }
    const out: T[] = [];
    const seen = new Map<unknown, number>();
    raw.forEach((value, i) => {
      const compiled = item(value, `${at}[${i}]`);
      if (compiled === null) return;
      const first = seen.get(key(compiled));
      if (first !== undefined) this.problem(`${at}[${i}]`, `${showValue(value)} repeats ${at}[${first}]`);
      else seen.set(key(compiled), i);
      out.push(compiled);
    });
    return out;
  }

  /** Runs a compiler that throws SigilErrors whose message already starts with the dotted path. */
  capture<T>(compile: () => T): T | null {
    try {
      return compile();
    } catch (err) {
      if (!(err instanceof SigilError)) throw err;
      this.problems.push(err.message);
      return null;
    }
  }
}

function isMapping(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) {
    return value;
  }
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}
