// What an HTTP/1.1 listener (the proxy's, the server's admin API) does when node:http gives up on a
// client: a request it cannot parse, or a head or body that outlived headersTimeout/requestTimeout.
// Node's own answer is written and the socket destroyed at once, which on a TLS socket discards the
// answer before it is encrypted and sent (a 100 KB header over mTLS got a silent close, not 431).
// Here the answer is sent, the socket ended, and destroyed only after a grace period. The listener
// decides what is counted, logged and said; this decides when an answer can be sent at all.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Clock } from './clock.js';

/** node:http's own sweep interval for expired heads and bodies, kept as the upper bound. */
const NODE_CHECK_INTERVAL_MS = 30_000;
/** Sweeping more often than this costs more than it saves, even for very short test timeouts. */
const MIN_CHECK_INTERVAL_MS = 250;
/**
 * After answering, the socket is ended; a client that never closes its side would keep it
 * half-open, so it is destroyed after this. Long enough for the answer to leave.
 */
const CLIENT_ERROR_LINGER_MS = 2_000;

/** Why node:http gave up on a client that can still be answered, or a TLS handshake that failed. */
export type ClientErrorKind =
  | 'handshake'
  | 'header-timeout'
  | 'request-timeout'
  | 'header-too-large'
  | 'bad-request';

export interface ClientErrorAnswer {
  readonly status: number;
  /** Header lines besides content-length and connection, e.g. `{ 'content-type': 'text/plain' }`. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * Counts and logs a refusal and says what to answer; undefined closes the connection unanswered
 * (a failed handshake has nobody to read an HTTP answer).
 */
export type ClientErrorRefusal = (
  kind: ClientErrorKind,
  err: NodeJS.ErrnoException,
  socket: Duplex,
) => ClientErrorAnswer | undefined;

/**
 * How often node:http should sweep for expired heads and bodies: half the header timeout, so a
 * slow head is cut between 1x and 1.5x of it.
 */
export function checkingIntervalMs(headerTimeoutMs: number): number {
  return Math.min(NODE_CHECK_INTERVAL_MS, Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(headerTimeoutMs / 2)));
}

/** A `clientError` handler: classifies, lets `refuse` account for it, then answers once and closes. */
export function clientErrorHandler(clock: Clock, refuse: ClientErrorRefusal) {
  // The parser reports again for every chunk that arrives after the first error; the first answer
  // stands, and destroying the socket then would discard it unsent.
  const answered = new WeakSet<Duplex>();
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (answered.has(socket)) return;
    answered.add(socket);
    const kind = classify(err, socket);
    // A reset or a write after the peer left: nobody to answer, nothing refused.
    const answer = kind === undefined ? undefined : refuse(kind, err, socket);
    const state = socket as Duplex & ServerSocketState;
    if (answer === undefined || !socket.writable || state._httpMessage?.headersSent) {
      // Nothing to say, or a response is already under way: a second status line would corrupt it.
      socket.destroy();
      return;
    }
    writeAnswer(socket, answer);
    const cancel = clock.setTimer(CLIENT_ERROR_LINGER_MS, () => socket.destroy());
    socket.once('close', cancel);
  };
}

/**
 * Writes a whole HTTP/1.1 response on a raw socket, where node:http offers no ServerResponse (a
 * client error, a refused upgrade), and ends the socket: `connection: close`, so the client
 * expects that. Headers go in `answer.headers` order, then content-length and connection.
 */
export function writeAnswer(socket: Duplex, answer: ClientErrorAnswer): void {
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\n`;
  for (const [name, value] of Object.entries(answer.headers)) head += `${name}: ${value}\r\n`;
  socket.end(
    `${head}content-length: ${Buffer.byteLength(answer.body)}\r\nconnection: close\r\n\r\n${answer.body}`,
  );
}

interface ServerSocketState {
  /** node:http's parser; `incoming` is the request being read, if its head is complete. */
  parser?: { incoming?: { complete: boolean } | null } | null;
  /** The response in flight on this socket, if any. */
  _httpMessage?: { headersSent: boolean } | null;
}

function classify(err: NodeJS.ErrnoException, socket: Duplex): ClientErrorKind | undefined {
  const code = err.code ?? '';
  if (/^ERR_(TLS|SSL)_/.test(code)) return 'handshake';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    const incoming = (socket as Duplex & ServerSocketState).parser?.incoming;
    return incoming && !incoming.complete ? 'request-timeout' : 'header-timeout';
  }
  if (code === 'HPE_HEADER_OVERFLOW') return 'header-too-large';
  if (code.startsWith('HPE_')) return 'bad-request';
  return undefined;
}
