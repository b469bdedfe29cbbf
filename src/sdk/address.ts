// Workload API endpoint addresses (spiffe-facts.md §5.4): `unix:///abs/path` or `tcp://IP:port`,
// as SPIFFE_ENDPOINT_SOCKET carries them. Parsing is strict in the way go-spiffe's addr.go is, so an
// address one client accepts is not refused by another. This module does not read the environment:
// callers pass the value in.
import { isIP } from 'node:net';
import { quote, SigilError } from '../spiffe/errors.js';

export const ENDPOINT_SOCKET_ENV = 'SPIFFE_ENDPOINT_SOCKET';

export type WorkloadEndpoint =
  | { readonly kind: 'unix'; readonly path: string; readonly grpcTarget: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly grpcTarget: string };

/** Parses a Workload API address. Throws ERR_INPUT_INVALID with one reason per broken rule. */
export function parseWorkloadEndpoint(input: string): WorkloadEndpoint {
  if (typeof input !== 'string' || input === '') {
    throw addressError(input, 'is empty (expected unix:///path or tcp://IP:port)', 'empty');
  }
  let url: URL;
  try {
    url = new URL(input);
  } catch (err) {
    throw addressError(input, 'is not a valid URI', 'uri', err);
  }
  if (url.protocol === 'unix:') return parseUnix(input, url);
  if (url.protocol === 'tcp:') return parseTcp(input, url);
  throw addressError(input, 'must have a "tcp" or "unix" scheme', 'scheme');
}

function parseUnix(input: string, url: URL): WorkloadEndpoint {
  // WHATWG URL gives no host and no leading "//" for an opaque form such as `unix:foo` or `unix:/x`.
  if (!input.startsWith('unix://')) {
    throw addressError(input, 'unix socket URI must not be opaque (use unix:///absolute/path)', 'opaque');
  }
  checkCommon(input, url, 'unix socket URI');
  if (url.host !== '') {
    throw addressError(
      input,
      'unix socket URI must not have an authority (use unix:///absolute/path)',
      'authority',
    );
  }
  if (url.pathname === '' || url.pathname === '/') {
    throw addressError(input, 'unix socket URI must include a path', 'path');
  }
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch (err) {
    throw addressError(input, 'unix socket path has invalid percent-encoding', 'path', err);
  }
  return Object.freeze({ kind: 'unix', path, grpcTarget: `unix://${path}` });
}

function parseTcp(input: string, url: URL): WorkloadEndpoint {
  if (!input.startsWith('tcp://')) {
    throw addressError(input, 'tcp socket URI must not be opaque (use tcp://IP:port)', 'opaque');
  }
  checkCommon(input, url, 'tcp socket URI');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const family = isIP(host);
  if (family === 0) throw addressError(input, 'tcp socket URI host is not an IP address', 'host');
  if (url.port === '') throw addressError(input, 'tcp socket URI must include a port', 'port');
  if (url.pathname !== '') throw addressError(input, 'tcp socket URI must not include a path', 'path');
  const port = Number(url.port);
  const grpcTarget = family === 6 ? `ipv6:[${host}]:${port}` : `ipv4:${host}:${port}`;
  return Object.freeze({ kind: 'tcp', host, port, grpcTarget });
}

function checkCommon(input: string, url: URL, what: string): void {
  if (url.username !== '' || url.password !== '' || /^[a-z]+:\/\/[^/]*@/.test(input)) {
    throw addressError(input, `${what} must not include user info`, 'userinfo');
  }
  if (url.search !== '' || input.includes('?')) {
    throw addressError(input, `${what} must not include query values`, 'query');
  }
  if (url.hash !== '' || input.includes('#')) {
    throw addressError(input, `${what} must not include a fragment`, 'fragment');
  }
}

function addressError(input: unknown, rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `workload endpoint socket address ${quote(input)} ${rule}`, {
    field: ENDPOINT_SOCKET_ENV,
    reason,
    cause,
  });
}
