// Workload API load generator for `npm run bench:workload`, run as a child process (fork with IPC) so
// that client CPU never shares an event loop with the agent it measures. Raw @grpc/grpc-js clients,
// one connection each (a local subchannel pool: the global pool would multiplex every client onto a
// single connection, which no real set of workloads does). Three jobs, driven by messages from the
// parent: hold many FetchX509SVID streams and report when each new SVID serial has reached all of
// them; probe first-response latency with short calls; or serve a canned-response control server.
// Times are epoch milliseconds with sub-millisecond precision (timeOrigin + now), comparable across
// processes on one machine.

import { performance } from 'node:perf_hooks';
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  type ServerWritableStream,
  type ServiceDefinition,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import {
  SECURITY_HEADER,
  SECURITY_HEADER_VALUE,
  workloadServiceDefinition,
  type X509SvidResponseMessage,
} from '../src/sdk/index.js';
import { readTlv, tlvValue } from '../src/spiffe/der.js';

export type ClientCommand =
  /** Open `streams` FetchX509SVID streams, `concurrency` connecting at a time. */
  | { type: 'open'; socketPath: string; streams: number; concurrency: number; retryRefusals: boolean }
  /**
   * `calls` sequential FetchX509SVID calls, each cancelled after its first message. `fresh`: every
   * call on a new connection (connect + peer credentials + attestation); otherwise on one warm channel.
   * With `controlSocketPath`, each call to the agent is followed by one to the control server.
   */
  | {
      type: 'probe';
      socketPath: string;
      controlSocketPath?: string;
      calls: number;
      fresh: boolean;
      retryRefusals: boolean;
    }
  /**
   * Serve FetchX509SVID on `socketPath` with one canned message, taken from the agent at
   * `agentSocketPath`: a control with the same gRPC stack, message and socket type but no agent
   * work (no attestation, no identity feed), so the machine's own latency noise shows apart.
   */
  | { type: 'serve-control'; agentSocketPath: string; socketPath: string }
  | { type: 'close' };

export type ClientReport =
  | { type: 'progress'; opened: number }
  | { type: 'opened'; firstResponseMs: number[]; serial: string; refusals: number }
  /** Every stream of this process has now seen `serial`: when the first and the last one did. */
  | { type: 'serial-reached'; serial: string; streams: number; firstAtMs: number; lastAtMs: number }
  | { type: 'probed'; latenciesMs: number[]; controlMs: number[]; refusals: number }
  | { type: 'serving' }
  | { type: 'failed'; message: string };

const METHOD = workloadServiceDefinition().FetchX509SVID;
/** Each client its own connection, as separate workload processes would have. */
const CHANNEL_OPTIONS = { 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_channelz': 0 };
/** A stream that gets no first message in this long is a failed bench, not a slow one. */
const FIRST_MESSAGE_TIMEOUT_MS = 30_000;
const PROGRESS_EVERY = 100;
/**
 * What the agent answers when the caller's PID-reuse guard trips. A profiled agent trips it
 * spuriously (SIGPROF makes its pidfd poll() return EINTR), so profiling runs retry such calls.
 */
const ATTESTATION_REFUSAL = 'workload attestation failed';

class Refused extends Error {}

const nowMs = () => performance.timeOrigin + performance.now();

function send(report: ClientReport): void {
  process.send!(report);
}

function metadata(): Metadata {
  const md = new Metadata();
  md.set(SECURITY_HEADER, SECURITY_HEADER_VALUE);
  return md;
}

function newClient(socketPath: string): Client {
  return new Client(`unix:${socketPath}`, credentials.createInsecure(), CHANNEL_OPTIONS);
}

/** Serial (hex) of the default SVID's leaf: a few TLV reads, no full certificate parse. */
function leafSerial(message: X509SvidResponseMessage): string {
  const der = message.svids[0]?.x509_svid;
  if (der === undefined) return '';
  const cert = readTlv(der, 0);
  const tbs = readTlv(der, cert.valueStart);
  const first = readTlv(der, tbs.valueStart);
  // [0] version comes first in v3 certificates; the serial follows it.
  const serial = first.tag === 0xa0 ? readTlv(der, first.end) : first;
  return tlvValue(der, serial).toString('hex');
}

function startCall(client: Client) {
  return client.makeServerStreamRequest<object, X509SvidResponseMessage>(
    METHOD.path,
    METHOD.requestSerialize,
    METHOD.responseDeserialize,
    {},
    metadata(),
  );
}

interface HeldStream {
  serial: string;
}

const clients: Client[] = [];
const held: HeldStream[] = [];
/** serial → how many streams have seen it, and when the first and the last did. */
const arrivals = new Map<string, { count: number; firstAtMs: number; lastAtMs: number }>();
let closing = false;

function noteSerial(stream: HeldStream, serial: string): void {
  if (serial === stream.serial) return;
  stream.serial = serial;
  const at = nowMs();
  let seen = arrivals.get(serial);
  if (seen === undefined) {
    seen = { count: 0, firstAtMs: at, lastAtMs: at };
    arrivals.set(serial, seen);
  }
  seen.count++;
  seen.lastAtMs = at;
  if (seen.count === held.length && held.length > 0) {
    send({ type: 'serial-reached', serial, streams: seen.count, ...seen });
  }
}

/** Opens one stream on its own connection; resolves with the time to its first message. */
function openStream(socketPath: string): Promise<number> {
  const client = newClient(socketPath);
  clients.push(client);
  const stream: HeldStream = { serial: '' };
  const startMs = nowMs();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no first FetchX509SVID message within ${FIRST_MESSAGE_TIMEOUT_MS} ms`)),
      FIRST_MESSAGE_TIMEOUT_MS,
    );
    const call = startCall(client);
    let first = true;
    call.on('data', (message: X509SvidResponseMessage) => {
      if (first) {
        first = false;
        clearTimeout(timer);
        held.push(stream);
        stream.serial = leafSerial(message);
        resolve(nowMs() - startMs);
        return;
      }
      noteSerial(stream, leafSerial(message));
    });
    call.on('error', (err: ServiceError) => {
      clearTimeout(timer);
      if (closing && err.code === status.CANCELLED) return;
      const why = `FetchX509SVID stream failed: ${status[err.code]} ${err.details}`;
      if (first) reject(err.details === ATTESTATION_REFUSAL ? new Refused(why) : new Error(why));
      else send({ type: 'failed', message: why });
    });
  });
}

/** Calls `attempt` again after an attestation refusal when `retry` is set; counts the refusals. */
async function withRetries<T>(
  retry: boolean,
  counter: { refusals: number },
  attempt: () => Promise<T>,
): Promise<T> {
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (!(retry && err instanceof Refused)) throw err;
      counter.refusals++;
    }
  }
}

async function openStreams(
  socketPath: string,
  count: number,
  concurrency: number,
  retryRefusals: boolean,
): Promise<void> {
  const firstResponseMs: number[] = [];
  const counter = { refusals: 0 };
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      firstResponseMs.push(await withRetries(retryRefusals, counter, () => openStream(socketPath)));
      if (firstResponseMs.length % PROGRESS_EVERY === 0)
        send({ type: 'progress', opened: firstResponseMs.length });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const serials = new Set(held.map((s) => s.serial));
  if (serials.size !== 1) throw new Error(`streams disagree on the SVID: serials ${[...serials].join(', ')}`);
  send({ type: 'opened', firstResponseMs, serial: [...serials][0]!, refusals: counter.refusals });
}

/** One call's first message and the time to it; the call is then cancelled (the stream is not needed). */
function firstMessage(client: Client): Promise<{ elapsedMs: number; message: X509SvidResponseMessage }> {
  const startMs = nowMs();
  return new Promise((resolve, reject) => {
    const call = startCall(client);
    call.once('data', (message: X509SvidResponseMessage) => {
      const elapsedMs = nowMs() - startMs;
      call.cancel();
      resolve({ elapsedMs, message });
    });
    call.on('error', (err: ServiceError) => {
      if (err.code === status.CANCELLED) return;
      const why = `probe failed: ${status[err.code]} ${err.details}`;
      reject(err.details === ATTESTATION_REFUSAL ? new Refused(why) : new Error(why));
    });
  });
}

/** Warm channels by socket path, kept across probe commands. */
const warm = new Map<string, Client>();

async function probe(command: Extract<ClientCommand, { type: 'probe' }>): Promise<void> {
  const latenciesMs: number[] = [];
  const controlMs: number[] = [];
  const counter = { refusals: 0 };
  const once = async (socketPath: string) => {
    if (!command.fresh) {
      let client = warm.get(socketPath);
      if (client === undefined) {
        client = newClient(socketPath);
        warm.set(socketPath, client);
      }
      return (await firstMessage(client)).elapsedMs;
    }
    const client = newClient(socketPath);
    try {
      return (await firstMessage(client)).elapsedMs;
    } finally {
      client.close();
    }
  };
  for (let i = 0; i < command.calls; i++) {
    latenciesMs.push(await withRetries(command.retryRefusals, counter, () => once(command.socketPath)));
    if (command.controlSocketPath !== undefined) controlMs.push(await once(command.controlSocketPath));
  }
  send({ type: 'probed', latenciesMs, controlMs, refusals: counter.refusals });
}

async function serveControl(agentSocketPath: string, socketPath: string): Promise<void> {
  const source = newClient(agentSocketPath);
  const { message } = await firstMessage(source);
  source.close();
  const server = new Server({ 'grpc.enable_channelz': 0 });
  server.addService({ FetchX509SVID: METHOD } as ServiceDefinition, {
    FetchX509SVID: (call: ServerWritableStream<object, X509SvidResponseMessage>) => {
      // The header check is the one piece of the agent's admission that costs nothing.
      if (call.metadata.get(SECURITY_HEADER)[0] !== SECURITY_HEADER_VALUE) {
        call.emit('error', { code: status.INVALID_ARGUMENT, details: 'security header missing' });
        return;
      }
      call.write(message);
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  send({ type: 'serving' });
}

process.on('message', (command: ClientCommand) => {
  const run = async () => {
    switch (command.type) {
      case 'open':
        return openStreams(command.socketPath, command.streams, command.concurrency, command.retryRefusals);
      case 'probe':
        return probe(command);
      case 'serve-control':
        return serveControl(command.agentSocketPath, command.socketPath);
      case 'close':
        closing = true;
        for (const client of clients) client.close();
        for (const client of warm.values()) client.close();
        process.disconnect();
        return;
    }
  };
  run().catch((err: unknown) => send({ type: 'failed', message: (err as Error).message }));
});
// The parent going away (crash, Ctrl-C) must not leave a thousand connections behind.
process.on('disconnect', () => process.exit(0));
