// Validates Kubernetes manifests against the OpenAPI schemas vendored in `kubernetes-models`
// (compiled ajv validators, one per kind). Those validators accept unknown fields (the OpenAPI
// schemas do not forbid them, and the API server only drops them with a warning), so a misspelt
// `mountpath` would pass. We add the strict check the API server's `--validate=strict` makes: every
// object the validator inspects is wrapped in a Proxy that records which keys it reads; a key it
// never read is a field the schema does not know. Objects whose keys it enumerates are maps
// (labels, ConfigMap data), and objects it never looks into are free-form: neither is checked.
import * as models from 'kubernetes-models';

type Json = Record<string, unknown>;
interface Tracker {
  readonly path: string;
  readonly target: Json;
  readonly read: Set<string>;
  enumerated: boolean;
}

/** The model class of an apiVersion/kind, e.g. apps/v1 Deployment → models.apps.v1.Deployment. */
function modelFor(apiVersion: string, kind: string): { prototype: { validate(): void } } | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const groupKey = group === '' ? undefined : group!.replace(/\.(\w)/g, (_, c: string) => c.toUpperCase());
  const root = models as unknown as Record<string, Record<string, Record<string, unknown>>>;
  const versions = groupKey === undefined ? { [version!]: root[version!] } : root[groupKey];
  return versions?.[version!]?.[kind] as { prototype: { validate(): void } } | undefined;
}

/** Schema errors and unknown fields of one manifest document, as "path: problem" lines. */
export function validateManifest(doc: Json): string[] {
  const where = `${String(doc.kind)} ${String((doc.metadata as Json | undefined)?.name)}`;
  const model = modelFor(String(doc.apiVersion), String(doc.kind));
  if (model === undefined)
    return [`${where}: no schema for apiVersion ${String(doc.apiVersion)} kind ${String(doc.kind)}`];
  const trackers: Tracker[] = [];
  const wrap = (value: unknown, path: string): unknown => {
    if (Array.isArray(value)) return value.map((item, i) => wrap(item, `${path}[${i}]`));
    if (typeof value !== 'object' || value === null) return value;
    const target = value as Json;
    const wrapped: Json = {};
    for (const [key, child] of Object.entries(target)) wrapped[key] = wrap(child, `${path}.${key}`);
    const tracker: Tracker = { path, target, read: new Set(), enumerated: false };
    trackers.push(tracker);
    return new Proxy(wrapped, {
      get(obj, key, receiver) {
        if (typeof key === 'string') tracker.read.add(key);
        return Reflect.get(obj, key, receiver);
      },
      has(obj, key) {
        if (typeof key === 'string') tracker.read.add(key);
        return Reflect.has(obj, key);
      },
      ownKeys(obj) {
        tracker.enumerated = true;
        return Reflect.ownKeys(obj);
      },
    });
  };
  const problems: string[] = [];
  try {
    model.prototype.validate.call(wrap(doc, ''));
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
  }
  for (const t of trackers) {
    if (t.enumerated || t.read.size === 0) continue;
    for (const key of Object.keys(t.target)) {
      if (!t.read.has(key)) problems.push(`${where}: ${t.path}.${key}: unknown field`);
    }
  }
  return problems;
}
