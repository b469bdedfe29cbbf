// The pure part of the gRPC relay: `:path` parsing, rule selection, weighted picks, header modifiers.
import { describe, expect, it } from 'vitest';
import { fixedRandom, seededRandom } from '../../spiffe/seeded-random.test-support.js';
import type { GrpcMatch, GrpcRouteEntry, GrpcRule } from '../routes/model.js';
import { modifyHeaderObject, parseGrpcPath, pickWeighted, selectGrpcRule } from './grpc-routing.js';

const rule = (name: string): GrpcRule => ({
  origin: { route: 'default/r', kind: 'GRPCRoute', index: 0, name },
  requestHeaders: null,
  responseHeaders: null,
  backends: [{ service: name, weight: 1 }],
});
const entry = (name: string, match: Partial<GrpcMatch>): GrpcRouteEntry => ({
  match: { method: null, headers: [], ...match },
  rule: rule(name),
});

describe('parseGrpcPath', () => {
  it('splits /package.Service/Method', () => {
    expect(parseGrpcPath('/helloworld.Greeter/SayHello')).toEqual({
      service: 'helloworld.Greeter',
      method: 'SayHello',
    });
    expect(parseGrpcPath('/Svc/M')).toEqual({ service: 'Svc', method: 'M' });
  });

  it.each([undefined, '', '*', '/', '/only', '//Method', '/Service/', '/a/b/c', '/a.B/C?x=1', 'a.B/C'])(
    'names no method for %j',
    (path) => {
      expect(parseGrpcPath(path)).toEqual({ service: null, method: null });
    },
  );
});

describe('selectGrpcRule', () => {
  const hello = parseGrpcPath('/helloworld.Greeter/SayHello');
  const bye = parseGrpcPath('/helloworld.Greeter/SayGoodbye');
  const other = parseGrpcPath('/other.Svc/SayHello');
  const notGrpc = parseGrpcPath('/healthz');

  it('takes the first entry that matches, in the order given', () => {
    const entries = [
      entry('canary', {
        method: { type: 'Exact', service: 'helloworld.Greeter', method: 'SayHello' },
        headers: [{ type: 'Exact', name: 'x-canary', value: '1' }],
      }),
      entry('hello', { method: { type: 'Exact', service: 'helloworld.Greeter', method: 'SayHello' } }),
      entry('greeter', { method: { type: 'Exact', service: 'helloworld.Greeter', method: null } }),
    ];
    expect(selectGrpcRule(entries, hello, { 'x-canary': '1' })?.origin.name).toBe('canary');
    expect(selectGrpcRule(entries, hello, { 'x-canary': '2' })?.origin.name).toBe('hello');
    expect(selectGrpcRule(entries, bye, {})?.origin.name).toBe('greeter');
    expect(selectGrpcRule(entries, other, {})).toBeNull();
    expect(selectGrpcRule(entries, notGrpc, {})).toBeNull();
  });

  it('matches a method-only Exact match on any service', () => {
    const entries = [entry('m', { method: { type: 'Exact', service: null, method: 'SayHello' } })];
    expect(selectGrpcRule(entries, other, {})?.origin.name).toBe('m');
    expect(selectGrpcRule(entries, bye, {})).toBeNull();
  });

  it('matches regular expressions against the whole name', () => {
    const entries = [
      entry('re', {
        method: {
          type: 'RegularExpression',
          service: /helloworld\.Gr.*/,
          method: /Say(Hello|Goodbye)/,
          serviceSource: 'helloworld\\.Gr.*',
          methodSource: 'Say(Hello|Goodbye)',
        },
      }),
    ];
    expect(selectGrpcRule(entries, hello, {})?.origin.name).toBe('re');
    expect(selectGrpcRule(entries, bye, {})?.origin.name).toBe('re');
    // A partial match is no match: `Say(Hello|Goodbye)` does not take SayHelloAgain.
    expect(selectGrpcRule(entries, parseGrpcPath('/helloworld.Greeter/SayHelloAgain'), {})).toBeNull();
    expect(selectGrpcRule(entries, parseGrpcPath('/x.helloworld.Greeter/SayHello'), {})).toBeNull();
  });

  it('lets a rule without a method match take any path, non-gRPC ones too', () => {
    const entries = [entry('any', {})];
    expect(selectGrpcRule(entries, notGrpc, {})?.origin.name).toBe('any');
    expect(selectGrpcRule(entries, hello, {})?.origin.name).toBe('any');
  });

  it('matches headers exactly or by regular expression, joining repeated values', () => {
    const entries = [
      entry('exact', { headers: [{ type: 'Exact', name: 'x-env', value: 'prod' }] }),
      entry('regex', { headers: [{ type: 'RegularExpression', name: 'x-user', regex: /u-\d+/ }] }),
    ];
    expect(selectGrpcRule(entries, hello, { 'x-env': 'prod' })?.origin.name).toBe('exact');
    expect(selectGrpcRule(entries, hello, { 'x-env': 'Prod' })).toBeNull();
    expect(selectGrpcRule(entries, hello, { 'x-user': 'u-42' })?.origin.name).toBe('regex');
    expect(selectGrpcRule(entries, hello, { 'x-user': 'u-42x' })).toBeNull();
    expect(selectGrpcRule(entries, hello, { 'x-env': ['prod', 'dev'] })).toBeNull();
  });
});

describe('pickWeighted', () => {
  const v1 = { service: 'v1', weight: 90 };
  const v2 = { service: 'v2', weight: 10 };

  it('splits within 1% of the weights over 10,000 picks', () => {
    const random = seededRandom(12);
    let v2Picks = 0;
    for (let i = 0; i < 10_000; i++) if (pickWeighted([v1, v2], random) === v2) v2Picks++;
    expect(Math.abs(v2Picks / 10_000 - 0.1)).toBeLessThan(0.01);
  });

  it('maps the random range onto the weights in order', () => {
    expect(pickWeighted([v1, v2], fixedRandom(0))).toBe(v1);
    expect(pickWeighted([v1, v2], fixedRandom(0.899))).toBe(v1);
    expect(pickWeighted([v1, v2], fixedRandom(0.9))).toBe(v2);
    expect(pickWeighted([v1, v2], fixedRandom(0.999_999_999))).toBe(v2);
  });

  it('never picks a weight of 0, and picks nothing when all are 0', () => {
    const zero = { service: 'z', weight: 0 };
    expect(pickWeighted([zero, v2], fixedRandom(0))).toBe(v2);
    expect(pickWeighted([v2, zero], fixedRandom(0.999_999_999))).toBe(v2);
    expect(pickWeighted([zero], fixedRandom(0))).toBeNull();
    expect(pickWeighted([zero, { ...zero }], fixedRandom(0.5))).toBeNull();
  });
});

describe('modifyHeaderObject', () => {
  it('removes, then sets, then adds, with names compared case-insensitively', () => {
    const headers: Record<string, string | string[]> = {
      ':path': '/a.B/C',
      'x-drop': '1',
      'x-keep': 'k',
      'x-set': 'old',
      'x-list': ['a', 'b'],
    };
    modifyHeaderObject(headers, {
      remove: ['X-Drop', 'x-set'],
      set: [{ name: 'X-Set', value: 'new' }],
      add: [
        { name: 'x-keep', value: 'k2' },
        { name: 'x-list', value: 'c' },
        { name: 'X-Fresh', value: 'f' },
      ],
    });
    expect(headers).toEqual({
      ':path': '/a.B/C',
      'x-keep': ['k', 'k2'],
      'x-set': 'new',
      'x-list': ['a', 'b', 'c'],
      'x-fresh': 'f',
    });
  });
});
