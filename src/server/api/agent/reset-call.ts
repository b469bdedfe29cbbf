// Ends a server call at once with RST_STREAM(CANCEL), dropping whatever it still has queued. grpc-js
// offers no public way to: a status it is given goes out only after every queued message has been
// sent, which never happens when the client has stopped reading, so the stalled call (and its
// buffered messages) would stay until the client went away. We reach the call's HTTP/2 stream
// through grpc-js's call chain (the handler's call → ServerInterceptingCall.nextCall… →
// BaseServerInterceptingCall.stream); reset-call.test.ts runs it against the grpc-js we ship, so an
// upgrade that moves it fails there rather than in production.
import { constants, type ServerHttp2Stream } from 'node:http2';

interface CallLink {
  readonly call?: CallLink;
  readonly nextCall?: CallLink;
  readonly stream?: ServerHttp2Stream;
}

/** Resets `call`'s HTTP/2 stream; false when no stream could be found (or it had already closed). */
export function resetCall(call: object): boolean {
  let link: CallLink | undefined = (call as CallLink).call;
  // A handful of interceptors at most; the bound only guards against a cycle in someone else's objects.
  for (let depth = 0; link !== undefined && link.stream === undefined && depth < 16; depth++) {
    link = link.nextCall;
  }
  const stream = link?.stream;
  if (stream === undefined || stream.closed || stream.destroyed) return false;
  stream.close(constants.NGHTTP2_CANCEL);
  return true;
}
