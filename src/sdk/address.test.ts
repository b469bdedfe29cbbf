import { describe, expect, it } from 'vitest';
import { parseWorkloadEndpoint } from './address.js';

describe('parseWorkloadEndpoint (spiffe-facts.md §5.4)', () => {
  it.each([
    [
      'unix:///tmp/agent.sock',
      { kind: 'unix', path: '/tmp/agent.sock', grpcTarget: 'unix:///tmp/agent.sock' },
    ],
    ['unix:///run/a%20b.sock', { kind: 'unix', path: '/run/a b.sock', grpcTarget: 'unix:///run/a b.sock' }],
    [
      'tcp://127.0.0.1:8000',
      { kind: 'tcp', host: '127.0.0.1', port: 8000, grpcTarget: 'ipv4:127.0.0.1:8000' },
    ],
    ['tcp://[::1]:8000', { kind: 'tcp', host: '::1', port: 8000, grpcTarget: 'ipv6:[::1]:8000' }],
  ])('accepts %s', (input, expected) => {
    expect(parseWorkloadEndpoint(input)).toEqual(expected);
  });

  it.each([
    ['', 'empty', 'is empty'],
    ['/tmp/agent.sock', 'uri', 'is not a valid URI'],
    ['http://127.0.0.1:80', 'scheme', 'must have a "tcp" or "unix" scheme'],
    ['unix:/tmp/agent.sock', 'opaque', 'unix socket URI must not be opaque'],
    ['unix:agent.sock', 'opaque', 'unix socket URI must not be opaque'],
    ['unix://host/tmp/agent.sock', 'authority', 'must not have an authority'],
    ['unix://', 'path', 'unix socket URI must include a path'],
    ['unix:///', 'path', 'unix socket URI must include a path'],
    ['unix://user@host/tmp/a.sock', 'userinfo', 'unix socket URI must not include user info'],
    ['unix:///tmp/a.sock?x=1', 'query', 'unix socket URI must not include query values'],
    ['unix:///tmp/a.sock#frag', 'fragment', 'unix socket URI must not include a fragment'],
    ['tcp://localhost:8000', 'host', 'tcp socket URI host is not an IP address'],
    ['tcp://1.2.3:8000', 'host', 'tcp socket URI host is not an IP address'],
    ['tcp://127.0.0.1', 'port', 'tcp socket URI must include a port'],
    ['tcp://127.0.0.1:8000/foo', 'path', 'tcp socket URI must not include a path'],
    ['tcp://127.0.0.1:8000/', 'path', 'tcp socket URI must not include a path'],
    ['tcp://u:p@127.0.0.1:8000', 'userinfo', 'tcp socket URI must not include user info'],
    ['tcp://127.0.0.1:8000?x', 'query', 'tcp socket URI must not include query values'],
    ['tcp://127.0.0.1:8000#f', 'fragment', 'tcp socket URI must not include a fragment'],
    ['tcp:127.0.0.1:8000', 'opaque', 'tcp socket URI must not be opaque'],
  ])('refuses %j (%s)', (input, reason, message) => {
    let caught: unknown;
    try {
      parseWorkloadEndpoint(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'ERR_INPUT_INVALID', reason, field: 'SPIFFE_ENDPOINT_SOCKET' });
    expect((caught as Error).message).toContain(message);
    expect((caught as Error).message).toContain(JSON.stringify(input));
  });
});
