// Selectors are `type:value` pairs produced by attestors (`unix:uid:1000`, `k8s_sat:cluster:c1`).
// The type is everything before the first colon; the value keeps any further colons.
import { quote, SigilError } from './errors.js';
import { unsafeCharacterIn } from './text.js';

export interface Selector {
  readonly type: string;
  readonly value: string;
}

const TYPE_PATTERN = /^[a-z0-9_]+$/;
/** Keeps a single selector from bloating every entry row and sync message. */
const MAX_SELECTOR_BYTES = 1024;

export function parseSelector(input: string, field = 'selector'): Selector {
  if (typeof input !== 'string') throw selectorError(input, field, 'must be a string "type:value"');
  const colon = input.indexOf(':');
  if (colon === -1) throw selectorError(input, field, 'must be "type:value" (e.g. "unix:uid:1000")');
  return makeSelector(input.slice(0, colon), input.slice(colon + 1), field, input);
}

export function makeSelector(
  type: string,
  value: string,
  field = 'selector',
  shown: unknown = `${type}:${value}`,
): Selector {
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
    throw selectorError(shown, field, 'type must be lowercase letters, digits and "_"');
  }
  if (typeof value !== 'string' || value === '') throw selectorError(shown, field, 'value is empty');
  if (Buffer.byteLength(type) + Buffer.byteLength(value) + 1 > MAX_SELECTOR_BYTES) {
    throw selectorError(shown, field, `is longer than ${MAX_SELECTOR_BYTES} bytes`);
  }
  const unsafe = unsafeCharacterIn(value);
  if (unsafe !== undefined) throw selectorError(shown, field, `value contains a ${unsafe}`);
  return Object.freeze({ type, value });
}

export function formatSelector(selector: Selector): string {
  return `${selector.type}:${selector.value}`;
}

/** Sorted, de-duplicated: the canonical form used for storage and duplicate detection. */
export function canonicalSelectors(selectors: readonly Selector[]): Selector[] {
  const byKey = new Map<string, Selector>();
  for (const s of selectors) byKey.set(formatSelector(s), s);
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
}

function selectorError(input: unknown, field: string, rule: string): SigilError {
  return new SigilError('ERR_SELECTOR_INVALID', `${field}: selector ${quote(input)} ${rule}`, {
    field,
    reason: 'selector',
  });
}
