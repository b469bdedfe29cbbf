// A real gRPC service for the gRPC route tests: `helloworld.Greeter` with SayHello, SayGoodbye
// (unary), StreamHellos (server streaming) and Hang (unary that never answers, to watch a cancel
// reach the server), served and called with @grpc/grpc-js. Messages are JSON (custom serializers
// keep proto files out of the tests; the framing, paths, metadata and status are real gRPC).
// Each server answers with its `version`, and records the metadata and cancellations it saw.
import {
  type CallOptions,
  type Client,
  credentials,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Metadata,
  makeGenericClientConstructor,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';

export interface Hello {
  readonly name: string;
}
export interface Reply {
  readonly message: string;
  readonly version: string;
  /** The request metadata the server saw, for header checks. */
  readonly metadata: Record<string, string>;
}

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as never,
};
const method = (name: string, responseStream: boolean) => ({
  path: `/helloworld.Greeter/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});

export const GREETER: ServiceDefinition = {
  SayHello: method('SayHello', false),
  SayGoodbye: method('SayGoodbye', false),
  StreamHellos: method('StreamHellos', true),
  Hang: method('Hang', false),
};

export interface GreeterServer {
  readonly port: number;
  readonly version: string;
  /** Calls received, by method name. */
  readonly calls: Map<string, number>;
  /** Hang calls the server saw cancelled. */
  cancelled: number;
  /** Hang calls in progress. */
  hanging: number;
  stop(): Promise<void>;
}

function metadataOf(metadata: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, values] of Object.entries(metadata.getMap())) out[key] = String(values);
  return out;
}

/** A Greeter on 127.0.0.1 (plaintext h2c, as an app behind its sidecar), answering as `version`. */
export async function startGreeter(version: string): Promise<GreeterServer> {
  const server = new Server();
  const state: GreeterServer = {
    port: 0,
    version,
    calls: new Map(),
    cancelled: 0,
    hanging: 0,
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
  const count = (name: string) => state.calls.set(name, (state.calls.get(name) ?? 0) + 1);
  const unary =
    (name: string): handleUnaryCall<Hello, Reply> =>
    (call, callback) => {
      count(name);
      callback(null, {
        message: `${name} ${call.request.name}`,
        version,
        metadata: metadataOf(call.metadata),
      });
    };
  const stream: handleServerStreamingCall<Hello, Reply> = (call) => {
    count('StreamHellos');
    const metadata = metadataOf(call.metadata);
    for (let i = 0; i < 3; i++)
      call.write({ message: `hello ${call.request.name} #${i}`, version, metadata });
    const trailer = new Metadata();
    trailer.set('x-served-by', version);
    // A non-OK status after the messages: the trailers must carry it through the relay.
    call.emit('error', { code: 9, details: `done streaming from ${version}`, metadata: trailer });
  };
  const hang: handleUnaryCall<Hello, Reply> = (call) => {
    count('Hang');
    state.hanging++;
    call.on('cancelled', () => {
      state.hanging--;
      state.cancelled++;
    });
  };
  server.addService(GREETER, {
    SayHello: unary('SayHello'),
    SayGoodbye: unary('SayGoodbye'),
    StreamHellos: stream,
    Hang: hang,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  return Object.assign(state, { port });
}

export interface GreeterClient {
  sayHello(name: string, metadata?: Record<string, string>, options?: CallOptions): Promise<Reply>;
  sayGoodbye(name: string): Promise<Reply>;
  /** The streamed replies and the final status, code and details and trailing metadata. */
  streamHellos(name: string): Promise<{ replies: Reply[]; code: number; details: string; servedBy: string }>;
  /** A unary call to `path` (a method no server here implements, or one no route takes). */
  callPath(path: string): Promise<Reply>;
  /** Starts a Hang call; the returned function cancels it; `done` settles with its error. */
  hang(): { cancel(): void; done: Promise<ServiceError> };
  close(): void;
}

const GreeterClientCtor = makeGenericClientConstructor(GREETER, 'Greeter');

type Unary = (
  request: Hello,
  metadata: Metadata,
  options: CallOptions,
  callback: (err: ServiceError | null, reply?: Reply) => void,
) => { cancel(): void };

/** A grpc-js client to a sidecar's outbound listener (plaintext h2c, as an app talks to it). */
export function greeterClient(port: number): GreeterClient {
  const client = new GreeterClientCtor(`127.0.0.1:${port}`, credentials.createInsecure(), {
    // Its own connection: grpc-js would otherwise share one with every client of the same target.
    'grpc.use_local_subchannel_pool': 1,
  }) as Client &
    Record<string, Unary> & {
      StreamHellos(request: Hello, metadata: Metadata): NodeJS.EventEmitter;
    };
  const unary = (
    name: string,
    request: Hello,
    extra: Record<string, string> = {},
    options: CallOptions = {},
  ) =>
    new Promise<Reply>((resolve, reject) => {
      const metadata = new Metadata();
      for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
      client[name]!(request, metadata, options, (err, reply) => (err ? reject(err) : resolve(reply!)));
    });
  return {
    sayHello: (name, metadata, options) => unary('SayHello', { name }, metadata, options),
    sayGoodbye: (name) => unary('SayGoodbye', { name }),
    streamHellos: (name) =>
      new Promise((resolve) => {
        const replies: Reply[] = [];
        const call = client.StreamHellos({ name }, new Metadata());
        call.on('data', (reply: Reply) => replies.push(reply));
        call.on('error', () => {});
        call.on('status', (status: { code: number; details: string; metadata: Metadata }) =>
          resolve({
            replies,
            code: status.code,
            details: status.details,
            servedBy: String(status.metadata.get('x-served-by')[0] ?? ''),
          }),
        );
      }),
    callPath: (path) =>
      new Promise<Reply>((resolve, reject) =>
        client.makeUnaryRequest<Hello, Reply>(
          path,
          json.serialize,
          json.deserialize,
          { name: 'x' },
          (err, reply) => (err ? reject(err) : resolve(reply!)),
        ),
      ),
    hang() {
      let call: { cancel(): void } | undefined;
      const done = new Promise<ServiceError>((resolve) => {
        call = client.Hang!({ name: 'wait' }, new Metadata(), {}, (err) => resolve(err!));
      });
      return { cancel: () => call!.cancel(), done };
    },
    close: () => client.close(),
  };
}
