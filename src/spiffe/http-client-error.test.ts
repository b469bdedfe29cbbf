import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import {
  type ClientErrorKind,
  checkingIntervalMs,
  clientErrorHandler,
  writeAnswer,
} from './http-client-error.js';

function socket() {
  const written: string[] = [];
  const s = new Duplex({
    read() {},
    write(chunk, _encoding, done) {
      written.push(String(chunk));
      done();
    },
  });
  return { s, written };
}

const error = (code: string) => Object.assign(new Error(code), { code });

describe('writeAnswer', () => {
  it('writes the status line, the headers in order, content-length in bytes and connection: close, then ends', async () => {
    const { s, written } = socket();
    const finished = new Promise((resolve) => s.once('finish', resolve));
    writeAnswer(s, {
      status: 403,
      headers: { 'x-sigil-error': 'forbidden', 'content-type': 'text/plain; charset=utf-8' },
      body: 'sigil proxy: é\n',
    });
    await finished;
    expect(written.join('')).toBe(
      'HTTP/1.1 403 Forbidden\r\nx-sigil-error: forbidden\r\ncontent-type: text/plain; charset=utf-8\r\n' +
        'content-length: 16\r\nconnection: close\r\n\r\nsigil proxy: é\n',
    );
  });
});

describe('clientErrorHandler', () => {
  it('answers once per socket, with the refusal the listener chose, then closes after a grace period', async () => {
    const clock = new ManualClock();
    const kinds: ClientErrorKind[] = [];
    const handle = clientErrorHandler(clock, (kind) => {
      kinds.push(kind);
      return { status: 431, headers: { 'content-type': 'text/plain' }, body: 'too large\n' };
    });
    const { s, written } = socket();
    handle(error('HPE_HEADER_OVERFLOW'), s);
    handle(error('HPE_INVALID_CONSTANT'), s);
    expect(kinds).toEqual(['header-too-large']);
    expect(written.join('')).toBe(
      'HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n' +
        'content-length: 10\r\nconnection: close\r\n\r\ntoo large\n',
    );
    expect(s.destroyed).toBe(false);
    await clock.advance(2_000);
    expect(s.destroyed).toBe(true);
  });

  it('closes unanswered what has nobody to answer, and what already has a response under way', () => {
    const clock = new ManualClock();
    const kinds: ClientErrorKind[] = [];
    const handle = clientErrorHandler(clock, (kind) => {
      kinds.push(kind);
      return kind === 'handshake' ? undefined : { status: 400, headers: {}, body: '' };
    });
    const reset = socket();
    handle(error('ECONNRESET'), reset.s);
    const tls = socket();
    handle(error('ERR_SSL_WRONG_VERSION_NUMBER'), tls.s);
    const busy = socket();
    Object.assign(busy.s, { _httpMessage: { headersSent: true } });
    handle(error('HPE_INVALID_METHOD'), busy.s);
    expect(kinds).toEqual(['handshake', 'bad-request']);
    for (const { s, written } of [reset, tls, busy]) {
      expect(s.destroyed).toBe(true);
      expect(written).toEqual([]);
    }
  });

  it('tells a slow head from a slow body by whether the head was complete', () => {
    const kinds: ClientErrorKind[] = [];
    const handle = clientErrorHandler(new ManualClock(), (kind) => {
      kinds.push(kind);
      return undefined;
    });
    const head = socket();
    handle(error('ERR_HTTP_REQUEST_TIMEOUT'), head.s);
    const body = socket();
    Object.assign(body.s, { parser: { incoming: { complete: false } } });
    handle(error('ERR_HTTP_REQUEST_TIMEOUT'), body.s);
    expect(kinds).toEqual(['header-timeout', 'request-timeout']);
  });
});

describe('checkingIntervalMs', () => {
  it('is half the header timeout, within 250 ms and 30 s', () => {
    expect([checkingIntervalMs(10_000), checkingIntervalMs(100), checkingIntervalMs(600_000)]).toEqual([
      5_000, 250, 30_000,
    ]);
  });
});
