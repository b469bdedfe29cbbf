// The failing app behind the server sidecar in bench:proxy's resilience scenario: an HTTP/1.1 server
// that answers 503 to a set share of requests and 200 "ok" to the rest, and counts what reaches it.
// Each request fails independently with that probability, from a seeded generator restarted every
// run: a retry is as likely to fail as a first try (as with a real flaky service; an evenly spread
// counter would let a retry land on a slot known to succeed), and two runs see the same sequence. Driven over IPC by proxy-resilience.ts (FaultCommand);
// `node dist/bench/proxy-fault-backend.js PORT`, prints "listening" once up.
import http from 'node:http';
import { seededRandom } from '../src/spiffe/seeded-random.test-support.js';

export type FaultCommand =
  | { readonly type: 'set'; readonly failPercent: number }
  | { readonly type: 'stats' };

export interface FaultStats {
  readonly type: 'stats';
  readonly requests: number;
  readonly failed: number;
  /** Requests whose `x-sigil-attempt` says they are a retry (2 or more): what the sidecar re-sent. */
  readonly retries: number;
  /** Of those, the ones answered 503: how often a retry met a failing slot again. */
  readonly retriesFailed: number;
}

const OK = Buffer.from('ok');
const UNAVAILABLE = Buffer.from('unavailable');

let failPercent = 0;
let requests = 0;
let failed = 0;
let retries = 0;
let retriesFailed = 0;

const SEED = 0x5191;
let nextRandom = seededRandom(SEED);

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  requests++;
  const attempt = Number(req.headers['x-sigil-attempt'] ?? 1);
  if (attempt > 1) retries++;
  // Drain the (empty) request body before answering, so the connection stays reusable.
  req.resume();
  if (nextRandom() * 100 < failPercent) {
    failed++;
    if (attempt > 1) retriesFailed++;
    res.writeHead(503, ['content-type', 'text/plain', 'content-length', String(UNAVAILABLE.length)]);
    res.end(UNAVAILABLE);
    return;
  }
  res.writeHead(200, ['content-type', 'text/plain', 'content-length', '2']);
  res.end(OK);
});

process.on('message', (command: FaultCommand) => {
  if (command.type === 'set') {
    // A new run: a new share, counters from zero.
    failPercent = command.failPercent;
    nextRandom = seededRandom(SEED);
    requests = 0;
    failed = 0;
    retries = 0;
    retriesFailed = 0;
    process.send?.({ type: 'set' });
  } else {
    process.send?.({ type: 'stats', requests, failed, retries, retriesFailed } satisfies FaultStats);
  }
});

server.listen(Number(process.argv[2]), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => process.exit(0));
