// The heads the relay writes on: hop-by-hop fields removed by the proxy's own filterHeaders (the
// rules Sigil applies today, src/proxy/headers.ts), and the body framing chosen here. Bodies are
// re-framed from llhttp's decoded body callbacks rather than forwarded raw: a Content-Length body
// keeps its length, any other body goes out chunked (trailers dropped, as node:http + undici drop
// them today), so the bytes the next hop parses are always ones this relay wrote itself.
import { STATUS_CODES } from 'node:http';
import { filterHeaders } from '../../src/proxy/headers.js';
import type { MessageHead } from './native-parser.js';

/** How a message's body is written on the next hop. */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'until-close';

export interface RequestHead {
  /** The whole head, ending with the empty line. */
  readonly text: string;
  readonly framing: BodyFraming;
  /** More than one Host field: refused as Sigil refuses it (request-refusal.ts). */
  readonly hostCount: number;
}

export interface ResponseHead {
  readonly text: string;
  readonly framing: BodyFraming;
}

/** Lowercase compare without allocating for every field: most fields differ in length already. */
function isContentLength(name: string): boolean {
  return name.length === 14 && name.toLowerCase() === 'content-length';
}

function fieldLines(headers: readonly string[]): { lines: string; hasLength: boolean } {
  let lines = '';
  let hasLength = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (isContentLength(name)) hasLength = true;
    lines += `${name}: ${headers[i + 1]}\r\n`;
  }
  return { lines, hasLength };
}

/** The request head for the upstream: always HTTP/1.1 and keep-alive, whatever the client spoke. */
export function requestHead(head: MessageHead): RequestHead {
  const filtered = filterHeaders(head.rawHeaders);
  const { lines, hasLength } = fieldLines(filtered.headers);
  // llhttp (strict) has refused Content-Length together with Transfer-Encoding already.
  const framing: BodyFraming = !filtered.hasBody ? 'none' : hasLength ? 'length' : 'chunked';
  const extra = framing === 'chunked' ? 'transfer-encoding: chunked\r\n' : '';
  return {
    text: `${head.method} ${head.url} HTTP/1.1\r\n${lines}${extra}\r\n`,
    framing,
    hostCount: filtered.hostCount,
  };
}

export interface ResponseContext {
  readonly isHead: boolean;
  /** The client's minor version: an HTTP/1.0 client cannot read chunked bodies. */
  readonly clientMinor: number;
  /** The client asked to close after this response. */
  readonly closeAfter: boolean;
}

/** The response head for the client, and how its body is framed. */
export function responseHead(head: MessageHead, context: ResponseContext): ResponseHead {
  const filtered = filterHeaders(head.rawHeaders);
  const { lines, hasLength } = fieldLines(filtered.headers);
  const status = head.status;
  const bodiless = context.isHead || status === 204 || status === 304 || status < 200;
  let framing: BodyFraming;
  if (bodiless) framing = 'none';
  else if (hasLength) framing = 'length';
  else framing = context.clientMinor === 0 ? 'until-close' : 'chunked';
  let extra = framing === 'chunked' ? 'transfer-encoding: chunked\r\n' : '';
  if (context.closeAfter || framing === 'until-close') extra += 'connection: close\r\n';
  else if (context.clientMinor === 0) extra += 'connection: keep-alive\r\n';
  const reason = head.statusText === '' ? (STATUS_CODES[status] ?? '') : head.statusText;
  return { text: `HTTP/1.1 ${status} ${reason}\r\n${lines}${extra}\r\n`, framing };
}

const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

/** Where bodies go: a socket, corked by the caller for the length of one parsed batch. */
export interface ByteSink {
  write(data: string | Buffer): boolean;
}

/** Writes one body chunk in `framing`. */
export function writeBody(framing: BodyFraming, chunk: Buffer, out: ByteSink): void {
  if (chunk.length === 0) return;
  if (framing === 'chunked') {
    out.write(`${chunk.length.toString(16)}\r\n`);
    out.write(chunk);
    out.write(CRLF);
  } else {
    out.write(chunk);
  }
}

/** Ends a body in `framing`: the last chunk for chunked, nothing otherwise. */
export function endBody(framing: BodyFraming, out: ByteSink): void {
  if (framing === 'chunked') out.write(LAST_CHUNK);
}

/** Whether a response to HEAD leaves its connection open: HTTP/1.1 unless `Connection` says otherwise. */
export function keepsAliveAfterHead(head: MessageHead): boolean {
  let connection = head.versionMinor === 1 ? 'keep-alive' : 'close';
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    if (head.rawHeaders[i]!.toLowerCase() === 'connection')
      connection = head.rawHeaders[i + 1]!.toLowerCase();
  }
  return connection.split(',').some((token) => token.trim() === 'keep-alive');
}
