// Node's own llhttp binding, the HTTPParser node:http runs, reached through `_http_common`: that
// module exports it on Node 20, 22 and 24 (documentation-only deprecated as DEP0199 in 24, with no
// runtime warning), while `process.binding('http_parser')` prints DEP0111 at runtime. Initialized
// exactly as node:http's server and client initialize theirs: no lenient flags, the process-wide max
// header size (--max-http-header-size, 16 KB by default). It can read straight from a socket's
// native stream (`consume`, as node:http's server does), skipping the 'data' event and its Buffer
// per read; body chunks are copies either way (node_http_parser.cc copies them). This module adapts
// the binding's callbacks to one message at a time; it decides nothing about what to do with one.
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';

/** The binding's surface this relay uses; see lib/_http_common.js and src/node_http_parser.cc. */
interface HttpParserBinding {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | ParseError;
  consume(handle: NativeStream): void;
  unconsume(): void;
  finish(): number | ParseError | undefined;
  close(): void;
  [callback: number]: unknown;
}

interface HttpParserClass {
  new (): HttpParserBinding;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}

/** A socket's native handle (TCPWrap, TLSWrap), as net.Socket keeps it in `_handle`. */
interface NativeStream {
  readonly isStreamBase?: boolean;
  /** Set by whoever pushed a reader onto the stream (node:http does the same). */
  _consumed?: boolean;
  /** net.Socket's own record of whether the handle reads. */
  reading?: boolean;
  readStart(): number;
  readStop(): number;
}

/** What `execute` returns when llhttp refuses the bytes: `code` is llhttp's (HPE_*). */
export interface ParseError extends Error {
  readonly code: string;
  readonly reason?: string;
  readonly bytesParsed: number;
}

const common = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: HttpParserClass;
  methods: readonly string[];
};
const { HTTPParser } = common;
/** llhttp reports the method as an index into this table (the same as http.METHODS). */
const METHODS = common.methods;

/** One message's start line and fields, as the peer sent them (names keep their case and order). */
export interface MessageHead {
  /** Request only. */
  readonly method: string;
  /** Request only: the target as sent. */
  readonly url: string;
  /** Response only. */
  readonly status: number;
  readonly statusText: string;
  readonly versionMinor: number;
  /** [name, value, name, value…]. */
  readonly rawHeaders: string[];
  /** llhttp's verdict from the version and Connection fields. */
  readonly shouldKeepAlive: boolean;
  readonly upgrade: boolean;
}

export interface MessageEvents {
  /** Return true to read no body (a response to HEAD: llhttp cannot know the request). */
  onHead(head: MessageHead): boolean;
  /** Body bytes, de-chunked; the buffer is only valid during the call unless copied. */
  onBody(chunk: Buffer): void;
  onEnd(): void;
  /** After `consume`: one read was parsed (the callbacks above have run); an error ends the connection. */
  onExecuted?(err: ParseError | undefined): void;
}

/** Reads requests (`'request'`) or responses (`'response'`) off one connection, in order. */
export class MessageParser {
  readonly #parser: HttpParserBinding;
  /** Fields and target delivered early by kOnHeaders (long heads, trailers), as node:http collects them. */
  #headers: string[] = [];
  #url = '';
  #closed = false;
  /** Freeing the native parser inside one of its own callbacks would pull it out from under llhttp. */
  #executing = false;
  #closeAfterExecute = false;
  /** The native stream this parser reads by itself, after `consume`. */
  #stream: NativeStream | null = null;

  constructor(kind: 'request' | 'response', events: MessageEvents) {
    const parser = new HTTPParser();
    parser.initialize(
      kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE,
      { type: kind === 'request' ? 'HTTPINCOMINGMESSAGE' : 'HTTPCLIENTREQUEST' },
      0,
      HTTPParser.kLenientNone,
    );
    parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      // Called for heads of more than 32 fields (in parts) and for trailers, which are dropped
      // below, as node:http + undici drop request trailers today.
      for (const item of headers) this.#headers.push(item);
      this.#url += url;
    };
    parser[HTTPParser.kOnHeadersComplete] = (
      _major: number,
      minor: number,
      headers: string[] | undefined,
      method: number | undefined,
      url: string | undefined,
      status: number | undefined,
      statusText: string | undefined,
      upgrade: boolean,
      shouldKeepAlive: boolean,
    ): number => {
      const rawHeaders = headers ?? this.#headers;
      const skipBody = events.onHead({
        method: method === undefined ? '' : METHODS[method]!,
        url: url ?? this.#url,
        status: status ?? 0,
        statusText: statusText ?? '',
        versionMinor: minor,
        rawHeaders,
        shouldKeepAlive,
        upgrade,
      });
      this.#headers = [];
      this.#url = '';
      // 1 tells llhttp there is no body to read, as node:http's client does for HEAD.
      return skipBody ? 1 : 0;
    };
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => events.onBody(chunk);
    parser[HTTPParser.kOnMessageComplete] = () => {
      this.#headers = [];
      this.#url = '';
      events.onEnd();
    };
    parser[HTTPParser.kOnExecute] = (result: number | ParseError) =>
      events.onExecuted?.(typeof result === 'number' ? undefined : result);
    this.#parser = parser;
  }

  /**
   * Reads `socket`'s bytes straight from its native stream from now on: no 'data' events, results
   * through `onExecuted`. False (nothing changed) when the socket has no such stream free.
   */
  consume(socket: Duplex): boolean {
    const stream = (socket as Duplex & { _handle?: NativeStream | null })._handle;
    if (!stream?.isStreamBase || stream._consumed) return false;
    stream._consumed = true;
    this.#parser.consume(stream);
    this.#stream = stream;
    return true;
  }

  /**
   * Stops or restarts reading the socket (backpressure). A consumed stream must be told directly:
   * socket.pause() only stops a stream that delivers 'data' once its buffer fills, and this one never does.
   */
  setReading(socket: Duplex, isReading: boolean): void {
    const stream = this.#stream;
    if (stream === null) {
      if (isReading) socket.resume();
      else socket.pause();
      return;
    }
    if (socket.destroyed || stream.reading === isReading) return;
    stream.reading = isReading;
    if (isReading) stream.readStart();
    else stream.readStop();
  }

  /** Parses `data`, calling back synchronously; a ParseError means the connection must end. */
  execute(data: Buffer): ParseError | undefined {
    if (this.#closed) return undefined;
    this.#executing = true;
    const result = this.#parser.execute(data);
    this.#executing = false;
    if (this.#closeAfterExecute) this.close();
    return typeof result === 'number' ? undefined : result;
  }

  /** The peer closed its side: ends a read-until-close body, or reports a message cut short. */
  finish(): ParseError | undefined {
    if (this.#closed) return undefined;
    const result = this.#parser.finish();
    return result === undefined || typeof result === 'number' ? undefined : result;
  }

  /** Frees the native parser (after the current execute, if called from a callback); later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    if (this.#executing) {
      this.#closeAfterExecute = true;
      return;
    }
    this.#closed = true;
    if (this.#stream === null) {
      this.#parser.close();
      return;
    }
    // A consumed parser may be inside its own read callback now: free it on the next turn.
    const parser = this.#parser;
    setImmediate(() => {
      parser.unconsume();
      parser.close();
    });
  }
}
