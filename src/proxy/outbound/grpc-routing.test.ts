// The pure part of the gRPC relay: `:path` parsing, entry selection on it, header modifiers.
import { describe, expect, it } from 'vitest';
import type { GrpcMatch, GrpcRouteEntry, GrpcRule } from '../routes/model.js';
import { compileRouteRegex } from '../routes/regex.js';
import { modifyHeaderObject, parseGrpcPath, selectGrpcEntry } from './grpc-routing.js';

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

describe('selectGrpcEntry', () => {
  const HELLO = '/helloworld.Greeter/SayHello';
  const BYE = '/helloworld.Greeter/SayGoodbye';
  const pick = (entries: GrpcRouteEntry[], path: string | undefined, headers: string[] = []) =>
    selectGrpcEntry(entries, path, headers)?.rule.origin.name ?? null;

  it('takes the first entry whose method and headers match, in the order given', () => {
    const entries = [
      entry('canary', {
        method: { type: 'Exact', service: 'helloworld.Greeter', method: 'SayHello' },
        headers: [{ type: 'Exact', name: 'x-canary', value: '1' }],
      }),
      entry('hello', { method: { type: 'Exact', service: 'helloworld.Greeter', method: 'SayHello' } }),
      entry('greeter', { method: { type: 'Exact', service: 'helloworld.Greeter', method: null } }),
    ];
    expect(pick(entries, HELLO, ['x-canary', '1'])).toBe('canary');
    expect(pick(entries, HELLO, ['x-canary', '2'])).toBe('hello');
    expect(pick(entries, BYE)).toBe('greeter');
    expect(pick(entries, '/other.Svc/SayHello')).toBeNull();
    expect(pick(entries, '/healthz')).toBeNull();
  });

  it('matches regular expressions against the whole name', () => {
    const regex = (source: string) => {
      const compiled = compileRouteRegex(source);
      if (!compiled.ok) throw new Error(compiled.reason);
      return compiled.regex;
    };
    const entries = [
      entry('re', {
        method: {
          type: 'RegularExpression',
          service: regex('helloworld\\.Gr.*'),
          method: regex('Say(Hello|Goodbye)'),
          serviceSource: 'helloworld\\.Gr.*',
          methodSource: 'Say(Hello|Goodbye)',
        },
      }),
    ];
    expect(pick(entries, HELLO)).toBe('re');
    expect(pick(entries, BYE)).toBe('re');
    expect(pick(entries, '/helloworld.Greeter/SayHelloAgain')).toBeNull();
    expect(pick(entries, '/x.helloworld.Greeter/SayHello')).toBeNull();
  });

  it('gives a path that names no method only to a rule without a method match', () => {
    const entries = [
      entry('hello', { method: { type: 'Exact', service: null, method: 'SayHello' } }),
      entry('any', { headers: [{ type: 'Exact', name: 'x-env', value: 'prod' }] }),
    ];
    expect(pick(entries, '/healthz', ['x-env', 'prod'])).toBe('any');
    expect(pick(entries, '/healthz')).toBeNull();
    expect(pick(entries, undefined, ['x-env', 'prod'])).toBe('any');
    expect(pick([entries[0]!], '/SayHello')).toBeNull();
    expect(pick(entries, HELLO)).toBe('hello');
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
