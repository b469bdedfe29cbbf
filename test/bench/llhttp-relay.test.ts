// The llhttp relay (bench/llhttp-relay/, the second Node floor) against Sigil's own HTTP/1.1 pair,
// in-process with real mTLS: every request-smuggling and malformed-framing case is sent to both
// pairs' outbound (plaintext) and inbound (mTLS) listeners, and each must be answered with the same
// statuses and x-sigil-error values and leave the app with the same requests. Then random valid
// request streams, split at random byte boundaries, must reach the app byte for byte.
import { createServer as createHttpServer } from 'node:http';
import { connect as netConnect, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startInboundRelay, startOutboundRelay } from '../../bench/llhttp-relay/listeners.js';
import {
  cleanups,
  listen,
  makeSide,
  mtlsConnect,
  startPair,
  tdA,
  useProxyTestHarness,
} from '../../src/proxy/pair.test-support.js';
import { seededRandom } from '../../src/spiffe/seeded-random.test-support.js';

useProxyTestHarness();

interface Received {
  readonly method: string;
  readonly url: string;
  readonly body: string;
  /** End-to-end fields the test sent (X-T-*), as [name, value] in order. */
  readonly fields: string[];
}

/** An app that records what it was given and answers 200 with a small body. */
async function startRecordingApp() {
  const received: Received[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fields = req.rawHeaders.filter((_, i, raw) => /^x-t-/i.test(raw[i - (i % 2)]!));
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        body: Buffer.concat(chunks).toString('latin1'),
        fields,
      });
      res.end('ok');
    });
  });
  return { port: await listen(server), received };
}

/** Tracks a relay listener's connections so the test can close them; server.close waits for them. */
function closing(server: Server): Server {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return server;
}

async function startRelayPair(appPort: number, consume: boolean) {
  const server = makeSide(tdA.mint('/server'));
  const client = makeSide(tdA.mint('/client'));
  const inbound = closing(
    await startInboundRelay({
      listen: { host: '127.0.0.1', port: 0 },
      target: { host: '127.0.0.1', port: appPort },
      identity: server.identity,
      consume,
    }),
  );
  const inPort = (inbound.address() as { port: number }).port;
  const outbound = closing(
    await startOutboundRelay({
      listen: { host: '127.0.0.1', port: 0 },
      target: { host: '127.0.0.1', port: inPort },
      identity: client.identity,
      consume,
    }),
  );
  return { outPort: (outbound.address() as { port: number }).port, inPort };
}

/** Writes `parts` (one write each, in order) and returns all that came back before the close. */
function exchange(socket: Duplex, parts: readonly string[], startEvent: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    socket.on(startEvent, () => {
      for (const part of parts) socket.write(part, 'latin1');
    });
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    // A listener that accepted a malformed request may wait for more; the diff then shows why.
    const timer = setTimeout(() => {
      answer += '[no close]';
      socket.destroy();
    }, EXCHANGE_TIMEOUT_MS);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

/** Every case ends in a close within milliseconds: refused, or the last request says Connection: close. */
const EXCHANGE_TIMEOUT_MS = 3_000;

const plain = (port: number, parts: readonly string[]) => {
  const socket = netConnect({ host: '127.0.0.1', port });
  cleanups.push(() => void socket.destroy());
  return exchange(socket, parts, 'connect');
};
const overMtls = (port: number, parts: readonly string[]) =>
  exchange(mtlsConnect(port), parts, 'secureConnect');

/**
 * What the app has received once it stops receiving: a request relayed after its client was
 * answered (a refusal behind a complete request) can still be on its way when the client closes.
 */
async function settled(app: { received: Received[] }): Promise<Received[]> {
  for (let seen = -1; seen !== app.received.length; ) {
    seen = app.received.length;
    await delay(SETTLE_MS);
  }
  // Sigil relays pipelined requests at once, on separate connections; the relay one after another.
  return app.received.splice(0).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Loopback relays a request within this even on a loaded 2-core machine. */
const SETTLE_MS = 150;

/** Each response's status and x-sigil-error, in order (bodies are short and never look like a head). */
function outcome(answer: string): string[] {
  const closed = answer.endsWith('[no close]') ? ['[no close]'] : [];
  return [...answer.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n((?:[^\r]+\r\n)*?)\r\n/g)]
    .map(([, status, head]) => `${status} ${/^x-sigil-error: (.*)$/im.exec(head!)?.[1] ?? ''}`.trim())
    .concat(closed);
}

const POST = 'POST /api/x HTTP/1.1\r\nHost: app\r\n';
const CLOSE = 'Connection: close\r\n';

/** A case Sigil refuses as a bad request, the answer most of the corpus pins. */
function refused(name: string, bytes: string): [string, string, string[]] {
  return [name, bytes, ['400 bad-request']];
}

/**
 * [name, bytes, answers on the outbound listener]: the security suite's smuggling cases, the issue's
 * list, and accepted controls. The answers pin what Sigil does today; the relay must match Sigil.
 */
const CORPUS: Array<[string, string, string[]]> = [
  refused('CL.TE', `${POST}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`),
  refused('TE.CL', `${POST}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`),
  refused('two different Content-Length', `${POST}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`),
  refused('two equal Content-Length', `${POST}Content-Length: 2\r\nContent-Length: 2\r\n\r\nab`),
  refused('Content-Length list', `${POST}Content-Length: 2, 2\r\n\r\nab`),
  refused('Content-Length with sign', `${POST}Content-Length: +2\r\n\r\nab`),
  refused('negative Content-Length', `${POST}Content-Length: -1\r\n\r\nab`),
  refused('Content-Length overflow', `${POST}Content-Length: 99999999999999999999999\r\n\r\nab`),
  refused(
    'Transfer-Encoding twice',
    `${POST}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  ),
  refused(
    'Transfer-Encoding not ending in chunked',
    `${POST}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
  ),
  refused('Transfer-Encoding xchunked', `${POST}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`),
  refused('space before the colon', `${POST}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`),
  refused('obs-fold in Transfer-Encoding', `${POST}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`),
  refused('obs-fold in another field', `${POST}X-T-A: 1\r\n 2\r\n${CLOSE}Content-Length: 0\r\n\r\n`),
  refused('bare LF line ends', `POST /api/x HTTP/1.1\nHost: app\nContent-Length: 0\n${CLOSE}\n`),
  refused('bare LF after one field', `${POST}X-T-A: 1\n${CLOSE}Content-Length: 0\r\n\r\n`),
  refused('bare CR inside a field', `${POST}X-T-A: 1\rX-T-B: 2\r\n${CLOSE}Content-Length: 0\r\n\r\n`),
  refused('NUL in a value', `${POST}X-T-A: a\0b\r\n${CLOSE}Content-Length: 0\r\n\r\n`),
  refused('bad field name', `${POST}X-T[A: 1\r\n${CLOSE}Content-Length: 0\r\n\r\n`),
  refused(
    'chunk-size overflow',
    `${POST}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\na\r\n0\r\n\r\n`,
  ),
  refused('chunk-size not hex', `${POST}Transfer-Encoding: chunked\r\n\r\nzz\r\na\r\n0\r\n\r\n`),
  refused('chunk data longer than its size', `${POST}Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n`),
  refused('space after chunk-size', `${POST}Transfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n`),
  refused('bare LF after chunk-size', `${POST}Transfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n`),
  refused('bad version', 'POST /api/x HTTP/1.2\r\nHost: app\r\nContent-Length: 0\r\n\r\n'),
  refused('bad method', 'P(ST /api/x HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n\r\n'),
  ['two Host fields', `${POST}Host: evil\r\n${CLOSE}Content-Length: 0\r\n\r\n`, ['400 duplicate-host']],
  [
    'a 100 KB field',
    `${POST}X-T-Big: ${'a'.repeat(100 * 1024)}\r\n${CLOSE}Content-Length: 0\r\n\r\n`,
    ['431 header-too-large'],
  ],
  refused(
    'data after Connection: close',
    `${POST}${CLOSE}Content-Length: 0\r\n\r\nGET / HTTP/1.1\r\nHost: app\r\n\r\n`,
  ),
  ['control: Content-Length body', `${POST}${CLOSE}Content-Length: 5\r\n\r\nhello`, ['200']],
  [
    'control: chunked body with extension and trailer',
    `${POST}${CLOSE}Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T-Trailer: 1\r\n\r\n`,
    ['200'],
  ],
  ['control: HTTP/1.0', 'GET /api/old HTTP/1.0\r\nHost: app\r\n\r\n', ['200']],
  [
    'control: two requests pipelined',
    `${POST}Content-Length: 1\r\n\r\naGET /api/y HTTP/1.1\r\nHost: app\r\n${CLOSE}\r\n`,
    ['200', '200'],
  ],
];

describe.each([
  ['reading data events', false],
  ['its parsers reading the native streams', true],
])('the llhttp relay, %s, refuses what Sigil refuses, the same way', (_how, consume) => {
  it('every smuggling and framing case: the same answers on both listeners, the same requests at the app', async () => {
    const sigilApp = await startRecordingApp();
    const relayApp = await startRecordingApp();
    const sigil = await startPair({ protocol: 'http', appPort: sigilApp.port });
    const relay = await startRelayPair(relayApp.port, consume);
    for (const [name, bytes, answers] of CORPUS) {
      const parts = [bytes];
      const expected = {
        outbound: outcome(await plain(sigil.outbound.address.port, parts)),
        inbound: outcome(await overMtls(sigil.inbound.address.port, parts)),
        app: await settled(sigilApp),
      };
      const got = {
        outbound: outcome(await plain(relay.outPort, parts)),
        inbound: outcome(await overMtls(relay.inPort, parts)),
        app: await settled(relayApp),
      };
      expect(expected.outbound, `${name}: Sigil's answers`).toEqual(answers);
      expect(got, name).toEqual(expected);
      // A refused request reaches the app only behind a complete one (data after Connection: close).
      if (answers[0] !== '200' && name !== 'data after Connection: close') expect(got.app, name).toEqual([]);
    }
  }, 120_000);
});

/** Random valid requests (bodies by length, chunked or none) and what the app must receive of each. */
function randomStream(random: () => number, count: number): { bytes: string; expected: Received[] } {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const text = (length: number) =>
    Array.from({ length }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join('');
  let bytes = '';
  const expected: Received[] = [];
  for (let i = 0; i < count; i++) {
    const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);
    const url = `/fuzz/${i}?q=${encodeURIComponent(text(1 + Math.floor(random() * 20)))}`;
    const fields: string[] = [];
    for (let f = Math.floor(random() * 5); f > 0; f--)
      fields.push(`X-T-${text(3).replace(/[^A-Za-z0-9]/g, 'a')}`, text(Math.floor(random() * 40)).trim());
    const framing = method === 'GET' ? 'none' : pick(['none', 'length', 'chunked']);
    // Bodies up to 256 KB, so that some span many reads and fill the upstream socket's buffer.
    const body = framing === 'none' ? '' : text(Math.floor(random() ** 2 * 256 * 1024));
    let head = `${method} ${url} HTTP/1.1\r\nHost: app\r\n`;
    for (let f = 0; f < fields.length; f += 2) head += `${fields[f]}: ${fields[f + 1]}\r\n`;
    if (i === count - 1) head += CLOSE;
    if (framing === 'length') bytes += `${head}Content-Length: ${body.length}\r\n\r\n${body}`;
    else if (framing === 'chunked') {
      bytes += `${head}Transfer-Encoding: chunked\r\n\r\n`;
      for (let at = 0; at < body.length; ) {
        const size = Math.min(body.length - at, 1 + Math.floor(random() * 9000));
        bytes += `${size.toString(16)}\r\n${body.slice(at, at + size)}\r\n`;
        at += size;
      }
      bytes += '0\r\n\r\n';
    } else bytes += `${head}\r\n`;
    expected.push({ method, url, body, fields });
  }
  return { bytes, expected };
}

/** Cuts `bytes` at random places into at most `maxParts` parts. */
function randomSplit(random: () => number, bytes: string, maxParts: number): string[] {
  const cuts = Array.from({ length: Math.floor(random() * maxParts) }, () =>
    Math.floor(random() * bytes.length),
  );
  cuts.sort((a, b) => a - b);
  const parts: string[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > from) parts.push(bytes.slice(from, cut));
    from = Math.max(from, cut);
  }
  return parts;
}

/** Writes each part in its own turn of the event loop, so that most arrive as separate reads. */
function sendInParts(port: number, parts: readonly string[]): Promise<string> {
  const socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
  cleanups.push(() => void socket.destroy());
  return new Promise((resolve) => {
    let answer = '';
    socket.on('connect', async () => {
      for (const part of parts) {
        socket.write(part, 'latin1');
        await delay(0);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    // A stalled relay shows as missing answers in the diff, not as the test's timeout.
    const timer = setTimeout(() => socket.destroy(), STREAM_TIMEOUT_MS);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

/** A stream of a few MB at most: seconds on a loaded machine. */
const STREAM_TIMEOUT_MS = 20_000;

describe.each([
  ['reading data events', false],
  ['its parsers reading the native streams', true],
])('the llhttp relay pair, %s, under random request streams', (_how, consume) => {
  it('split at random byte boundaries: the app receives every request byte for byte, in order', async () => {
    const app = await startRecordingApp();
    const relay = await startRelayPair(app.port, consume);
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const random = seededRandom(seed);
      const { bytes, expected } = randomStream(random, 12);
      const answer = await sendInParts(relay.outPort, randomSplit(random, bytes, 40));
      expect(outcome(answer), `seed ${seed}`).toEqual(expected.map(() => '200'));
      expect(app.received.splice(0), `seed ${seed}`).toEqual(expected);
    }
  }, 120_000);
});
