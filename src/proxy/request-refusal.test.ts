import { describe, expect, it } from 'vitest';
import { normalizeRequestTarget } from './policy/normalize.js';
import { requestRefusal } from './request-refusal.js';

describe('requestRefusal', () => {
  const good = normalizeRequestTarget('/x');
  const bad = normalizeRequestTarget('/a%2fb');

  it('lets through a target that normalized, with at most one Host field', () => {
    expect(requestRefusal(good, { hostCount: 1 })).toBeNull();
    expect(requestRefusal(good, { hostCount: 0 })).toBeNull();
    expect(requestRefusal(undefined, { hostCount: 1 })).toBeNull();
    expect(requestRefusal(good, undefined)).toBeNull();
  });

  it('refuses a target normalize.ts refused with 400 bad-path, naming why; before a second Host', () => {
    const refusal = requestRefusal(bad, { hostCount: 2 });
    expect(refusal).toEqual({
      reason: 'bad-path',
      status: 400,
      message:
        'request target "/a%2fb" contains an encoded "/" (%2F) (path_normalization.escaped_slashes: reject)',
      fields: {
        err: 'request target "/a%2fb" contains an encoded "/" (%2F) (path_normalization.escaped_slashes: reject)',
        path_refusal: 'escaped-slash',
      },
    });
  });

  it('refuses two Host fields with 400 duplicate-host', () => {
    expect(requestRefusal(undefined, { hostCount: 2 })).toEqual({
      reason: 'duplicate-host',
      status: 400,
      message: 'request has 2 Host header fields; one is allowed',
      fields: { err: 'request has 2 Host header fields; one is allowed' },
    });
  });
});
