// The config keys each parser accepts, found by asking the parsers themselves: every parser refuses an
// unknown key with "<path>.<key>: unknown key (known keys: a, b, …)", so a probe key planted in a
// mapping makes the parser list that mapping's keys. Each key is then planted with a probe mapping
// (and a list of one) to find the sections below it, recursively. Nothing here lists a key, so the
// reference in docs/operator-guide.md is checked against the code as it is, not against a copy.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadAgentConfig } from '../../src/agent/config.js';
import { createNodeAttestorAgent, NODE_ATTESTOR_NAMES } from '../../src/attestors/node/index.js';
import { createWorkloadAttestor } from '../../src/attestors/workload/index.js';
import { checkProxyConfig } from '../../src/proxy/config.js';
import { checkServerConfig } from '../../src/server/config.js';

const PROBE = 'zz_probe_key';
/** A mapping key that stands for any name (a k8s_sat cluster), written `<name>` in the docs. */
const ANY_NAME = 'probe-name';

/** One segment of a key path: a key, a list item (`[]`) or a name the operator chooses (`<name>`). */
type Segment = string;

/** Runs a parser on a raw config and returns the problem lines it reports (none when it accepts). */
export type ProblemLister = (raw: Record<string, unknown>) => string[];

/** Builds the raw config that holds `leaf` at `segments`. */
function plant(
  segments: readonly Segment[],
  leaf: unknown,
  fixed: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  let value: unknown = leaf;
  for (let i = segments.length - 1; i >= 0; i--) {
    const seg = segments[i]!;
    if (seg === '[]') value = [value];
    else if (seg === '<name>') value = { [ANY_NAME]: value };
    else value = { [seg]: value };
  }
  return { ...fixed, ...(value as Record<string, unknown>) };
}

/** How the parser names a path in its messages: `a.b[0].c`. */
function spoken(segments: readonly Segment[]): string {
  let out = '';
  for (const seg of segments) {
    if (seg === '[]') out += '[0]';
    else out += `${out ? '.' : ''}${seg === '<name>' ? ANY_NAME : seg}`;
  }
  return out;
}

/** How the docs name a path: `a.b[].c`, `<name>` for operator-chosen names. */
export function written(segments: readonly Segment[]): string {
  return spoken(segments).replaceAll('[0]', '[]').replaceAll(ANY_NAME, '<name>');
}

/** The keys the mapping at `segments` accepts, or null when the parser does not treat it as a mapping of known keys. */
function keysAt(
  list: ProblemLister,
  segments: readonly Segment[],
  fixed: Readonly<Record<string, unknown>>,
): string[] | null {
  const at = spoken(segments);
  const prefix = at ? `${at}.${PROBE}` : PROBE;
  for (const line of list(plant(segments, { [PROBE]: 1 }, fixed))) {
    const text = line.trim();
    if (!text.startsWith(`${prefix}: unknown key`)) continue;
    if (text.includes('takes no settings')) return [];
    const match = /\((?:known keys|valid): ([^)]*)\)/.exec(text);
    return match ? match[1]!.split(',').map((k) => k.trim()) : null;
  }
  return null;
}

export interface KeyTree {
  /** Every key path, sections included, as the docs write it (`services[].retries.backoff.base`). */
  readonly paths: string[];
  /** The keys of each section, by its written path ('' for the top level). */
  readonly sections: Map<string, string[]>;
}

/**
 * Walks a parser's keys from `root` down. `named` lists mappings whose keys are names the operator
 * chooses from a fixed set (node attestors): each listed name is walked as a section.
 */
export function discoverKeys(
  list: ProblemLister,
  options: {
    root?: Segment[];
    fixed?: Record<string, unknown>;
    named?: Record<string, readonly string[]>;
  } = {},
): KeyTree {
  const fixed = options.fixed ?? {};
  const tree: KeyTree = { paths: [], sections: new Map() };
  const visit = (segments: Segment[], keys: readonly string[]) => {
    tree.sections.set(written(segments), [...keys]);
    for (const key of keys) {
      const child = [...segments, key];
      tree.paths.push(written(child));
      const names = options.named?.[written(child)];
      if (names) {
        for (const name of names) {
          const sub = keysAt(list, [...child, name], fixed);
          tree.paths.push(written([...child, name]));
          if (sub) visit([...child, name], sub);
        }
        continue;
      }
      for (const shape of [child, [...child, '[]'], [...child, '<name>']]) {
        const sub = keysAt(list, shape, fixed);
        if (sub) {
          if (shape.at(-1) === '<name>') tree.paths.push(written(shape));
          visit(shape, sub);
          break;
        }
      }
    }
  };
  const root = options.root ?? [];
  visit(root, keysAt(list, root, fixed) ?? []);
  return tree;
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
    return [];
  } catch (err) {
    return (err as Error).message.split('\n');
  }
}

/** sigil-server's keys, node attestor settings included (the server checks them with the rest). */
export function serverKeys(): KeyTree {
  return discoverKeys((raw) => problemsOf(() => checkServerConfig(raw, 'probe', '/nonexistent')), {
    fixed: { trust_domain: 'example.org' },
    named: { node_attestors: NODE_ATTESTOR_NAMES },
  });
}

/**
 * sigil-agent's keys. The agent reads its config from a file, so each probe is written to `dir`;
 * attestor settings are checked by the attestors' own factories, walked under their config paths.
 */
export function agentKeys(dir: string): KeyTree {
  let n = 0;
  const top = discoverKeys((raw) => {
    const file = path.join(dir, `probe-${n++}.json`);
    writeFileSync(file, JSON.stringify(raw));
    return problemsOf(() => loadAgentConfig({ config: file }, dir));
  });
  const paths = [...top.paths];
  const sections = new Map(top.sections);
  for (const name of NODE_ATTESTOR_NAMES) {
    const at = `node_attestor.${name}`;
    // The factory is told its path is `name`, so its messages speak of the paths the probe planted.
    const sub = discoverKeys((raw) => problemsOf(() => createNodeAttestorAgent(name, raw[name], name)), {
      root: [name],
    });
    paths.push(at, ...sub.paths.map((p) => `node_attestor.${p}`));
    for (const [k, v] of sub.sections) sections.set(`node_attestor.${k}`, v);
  }
  // The unix attestor names its keys without a prefix; its mapping sits under workload_attestors.unix.
  const unix = discoverKeys((raw) => problemsOf(() => createWorkloadAttestor('unix', raw)));
  paths.push('workload_attestors.unix', ...unix.paths.map((p) => `workload_attestors.unix.${p}`));
  sections.set('workload_attestors.unix', unix.sections.get('') ?? []);
  return { paths, sections };
}

/** sigil-proxy's keys. */
export function proxyKeys(): KeyTree {
  return discoverKeys((raw) => problemsOf(() => checkProxyConfig(raw, '/nonexistent/proxy.yaml')));
}
