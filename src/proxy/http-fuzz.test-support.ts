// Test support for the relay fuzz test (relay-fuzz.test.ts): random HTTP/1.1 exchanges as
// fast-check arbitraries, their wire form, and a small incremental reader of HTTP/1.1 messages for
// the raw TCP app and the raw client. The reader is deliberately strict and minimal: it only has to
// read what this test and node:http write (Content-Length, chunked, bodiless statuses), and it
// throws on anything else, so a relay that corrupts framing fails the test instead of confusing it.
import fc from 'fast-check';

/** One random exchange: the request a client sends and the answer the app gives it. */
export interface FuzzExchange {
  readonly id: string;
  readonly method: string;
  readonly target: string;
  /** Name/value pairs as sent, framing excluded (added from `requestFraming`). */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  /** How the body is framed: none (no body), a Content-Length, or chunked at these sizes. */
  readonly requestFraming: Framing;
  readonly status: number;
  readonly reason: string;
  readonly responseHeaders: readonly (readonly [string, string])[];
  readonly responseBody: Buffer;
  readonly responseFraming: Framing;
}

export type Framing = { kind: 'none' } | { kind: 'length' } | { kind: 'chunked'; sizes: readonly number[] };

/** A parsed message: the start line's parts, headers in order and case, the decoded body, its bytes on the wire. */
export interface WireMessage {
  readonly startLine: string;
  readonly headers: [string, string][];
  readonly body: Buffer;
  readonly raw: Buffer;
}

const TOKEN = fc.stringMatching(/^[A-Za-z0-9]{1,12}$/);
/** Header names the test sends: mixed case, repeats allowed; none the proxy sets or strips itself. */
const HEADER_NAME = fc.constantFrom('X-Fuzz-A', 'x-fuzz-b', 'Accept', 'User-Agent', 'Cache-Control', 'X-DUP');
const HEADER_VALUE = fc.stringMatching(/^[!-~]([ -~]{0,30}[!-~])?$/);
const RESPONSE_HEADER_NAME = fc.constantFrom('X-Reply-A', 'set-cookie', 'Content-Type', 'ETag', 'X-DUP');
const BODY = fc.uint8Array({ minLength: 1, maxLength: 600 }).map((bytes) => Buffer.from(bytes));

/** `isDelimited`: a response, whose empty body must still be framed (else it lasts until the connection closes). */
function framing(body: Buffer, isDelimited = false): fc.Arbitrary<Framing> {
  if (body.length === 0 && !isDelimited) return fc.constant({ kind: 'none' });
  return fc.oneof(
    fc.constant<Framing>({ kind: 'length' }),
    fc
      .array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 8 })
      .map((sizes): Framing => ({ kind: 'chunked', sizes })),
  );
}

const HEADERS = (name: fc.Arbitrary<string>) =>
  fc.array(fc.tuple(name, HEADER_VALUE), { maxLength: 6 }) as fc.Arbitrary<[string, string][]>;

/** Safe, unsafe and bodiless methods; a body only where a client sends one. */
const REQUEST = fc
  .record({
    method: fc.constantFrom(
      'GET',
      'GET',
      'GET',
      'HEAD',
      'OPTIONS',
      'OPTIONS',
      'DELETE',
      'POST',
      'PUT',
      'PATCH',
    ),
    path: fc.array(TOKEN, { minLength: 1, maxLength: 4 }),
    query: fc.option(fc.tuple(TOKEN, TOKEN), { nil: undefined }),
    headers: HEADERS(HEADER_NAME),
    body: BODY,
  })
  .chain((r) => {
    const body = ['POST', 'PUT', 'PATCH'].includes(r.method) ? r.body : Buffer.alloc(0);
    return framing(body).map((f) => ({ ...r, body, requestFraming: f }));
  });

const RESPONSE = fc
  .record({
    status: fc.constantFrom(200, 200, 201, 204, 404, 500),
    reason: fc.stringMatching(/^[A-Za-z]{1,10}( [A-Za-z]{1,10})?$/),
    headers: HEADERS(RESPONSE_HEADER_NAME),
    body: fc.option(BODY, { nil: undefined }),
  })
  .chain((r) => {
    const body = r.status === 204 || r.body === undefined ? Buffer.alloc(0) : r.body;
    return framing(body, r.status !== 204).map((f) => ({ ...r, body, responseFraming: f }));
  });

/** Client connections, each a keep-alive sequence of exchanges; ids are unique within one run. */
export const FUZZ_CONNECTIONS: fc.Arbitrary<FuzzExchange[][]> = fc
  .array(fc.array(fc.tuple(REQUEST, RESPONSE), { minLength: 1, maxLength: 8 }), {
    minLength: 1,
    maxLength: 3,
  })
  .map((connections) => {
    let n = 0;
    return connections.map((exchanges) =>
      exchanges.map(([q, a]) => ({
        id: String(n++),
        method: q.method,
        target: `/${q.path.join('/')}${q.query ? `?${q.query[0]}=${q.query[1]}` : ''}`,
        headers: q.headers,
        body: q.body,
        requestFraming: q.requestFraming,
        status: a.status,
        // HEAD's answer has no body but declares the length a GET would get.
        reason: a.reason,
        responseHeaders: a.headers,
        responseBody: q.method === 'HEAD' ? Buffer.alloc(0) : a.body,
        responseFraming: q.method === 'HEAD' ? { kind: 'length' } : a.responseFraming,
      })),
    );
  });

/** The header the test adds to every request so the app knows which exchange it is. */
export const ID_HEADER = 'X-Fuzz-Id';

function framed(head: string, body: Buffer, f: Framing): Buffer {
  if (f.kind === 'none') return Buffer.from(`${head}\r\n`, 'latin1');
  if (f.kind === 'length')
    return Buffer.concat([Buffer.from(`${head}Content-Length: ${body.length}\r\n\r\n`, 'latin1'), body]);
  const parts: Buffer[] = [Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n`, 'latin1')];
  let at = 0;
  for (let i = 0; at < body.length; i++) {
    const size = Math.min(f.sizes[i % f.sizes.length]!, body.length - at);
    parts.push(
      Buffer.from(`${size.toString(16)}\r\n`, 'latin1'),
      body.subarray(at, at + size),
      Buffer.from('\r\n'),
    );
    at += size;
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

function headLines(pairs: readonly (readonly [string, string])[]): string {
  return pairs.map(([name, value]) => `${name}: ${value}\r\n`).join('');
}

export function requestBytes(e: FuzzExchange): Buffer {
  const head = `${e.method} ${e.target} HTTP/1.1\r\nHost: fuzz.test\r\n${ID_HEADER}: ${e.id}\r\n${headLines(e.headers)}`;
  return framed(head, e.body, e.requestFraming);
}

/** The Content-Length the app declares in answer to HEAD, for a body it does not send. */
export const HEAD_CONTENT_LENGTH = 42;

/** The app's answer; for HEAD, the head a GET would get (Content-Length of a body not sent). */
export function responseBytes(e: FuzzExchange): Buffer {
  const head = `HTTP/1.1 ${e.status} ${e.reason}\r\n${headLines(e.responseHeaders)}`;
  if (e.method === 'HEAD')
    return Buffer.from(`${head}Content-Length: ${HEAD_CONTENT_LENGTH}\r\n\r\n`, 'latin1');
  return framed(head, e.responseBody, e.responseFraming);
}

/**
 * Reads one message from the start of `buffer`; null when more bytes are needed. `bodiless` says the
 * message has no body whatever its headers (a response to HEAD, or a 204/304).
 */
export function readMessage(buffer: Buffer, bodiless: (startLine: string) => boolean): WireMessage | null {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const startLine = lines[0]!;
  const headers = lines.slice(1).map((line): [string, string] => {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header line ${JSON.stringify(line)}`);
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  const field = (name: string) => headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
  let at = end + 4;
  if (bodiless(startLine)) return { startLine, headers, body: Buffer.alloc(0), raw: buffer.subarray(0, at) };
  const te = field('transfer-encoding');
  const cl = field('content-length');
  if (te.length > 0) {
    if (te.join(',').toLowerCase() !== 'chunked' || cl.length > 0) throw new Error(`bad framing ${te} ${cl}`);
    const chunks: Buffer[] = [];
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', at);
      if (lineEnd < 0) return null;
      const size = Number.parseInt(buffer.subarray(at, lineEnd).toString('latin1').split(';')[0]!, 16);
      if (!Number.isInteger(size) || size < 0) throw new Error('bad chunk size');
      if (size === 0) {
        // No trailers are sent in this test: the last chunk is followed by the blank line.
        if (buffer.length < lineEnd + 4) return null;
        if (buffer.subarray(lineEnd + 2, lineEnd + 4).toString() !== '\r\n')
          throw new Error('unexpected trailer');
        at = lineEnd + 4;
        return { startLine, headers, body: Buffer.concat(chunks), raw: buffer.subarray(0, at) };
      }
      if (buffer.length < lineEnd + 2 + size + 2) return null;
      chunks.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
      if (buffer.subarray(lineEnd + 2 + size, lineEnd + 4 + size).toString() !== '\r\n')
        throw new Error('bad chunk end');
      at = lineEnd + 4 + size;
    }
  }
  if (cl.length > 1) throw new Error(`repeated Content-Length ${cl}`);
  const length = cl.length === 1 ? Number(cl[0]) : 0;
  if (!Number.isSafeInteger(length) || length < 0) throw new Error(`bad Content-Length ${cl}`);
  if (buffer.length < at + length) return null;
  return { startLine, headers, body: buffer.subarray(at, at + length), raw: buffer.subarray(0, at + length) };
}

/** Splits `bytes` at random boundaries drawn from `cuts` (fractions of its length). */
export function splitAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter(
    (p) => p > 0 && p < bytes.length,
  );
  points.sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    parts.push(bytes.subarray(at, p));
    at = p;
  }
  parts.push(bytes.subarray(at));
  return parts;
}
