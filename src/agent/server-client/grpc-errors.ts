// grpc-js ends its connection failures with "Resolution note: <note>", and the note is empty in the
// usual case ("…ECONNREFUSED 127.0.0.1:8081. Resolution note: "). Agent logs and CLI output show these
// texts, so the empty note is cut off; a note that says something is kept. It is cut from the call's
// status, before grpc-js builds the error, so message and details agree for every call and stream.
import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';

const EMPTY_RESOLUTION_NOTE = /\.?\s*Resolution note:\s*$/;

export function withoutEmptyResolutionNote(text: string): string {
  return text.replace(EMPTY_RESOLUTION_NOTE, '');
}

/** A client interceptor rewriting each call's final status details with withoutEmptyResolutionNote. */
export const cleanResolutionNote: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, _listener, next) {
      next(metadata, {
        onReceiveStatus(status, nextStatus) {
          nextStatus({ ...status, details: withoutEmptyResolutionNote(status.details) });
        },
      });
    },
  });
