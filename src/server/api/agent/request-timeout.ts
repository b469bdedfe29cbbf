// A gRPC server interceptor ending any call whose first request message does not arrive in time. A
// call in progress keeps its connection out of the idle timeout, so without this a client could open
// a unary call, never send its message, and hold the connection (and its descriptor) forever.
import {
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  status,
} from '@grpc/grpc-js';
import type { Clock } from '../../../spiffe/clock.js';

export function requestTimeout(clock: Clock, timeoutMs: number): ServerInterceptor {
  return (_method, call: ServerInterceptingCallInterface) => {
    let cancelTimer = () => {};
    const intercepted: ServerInterceptingCall = new ServerInterceptingCall(call, {
      start: (next) => {
        cancelTimer = clock.setTimer(timeoutMs, () =>
          intercepted.sendStatus({
            code: status.DEADLINE_EXCEEDED,
            details: `no request message within ${timeoutMs / 1000}s (agent_api.request_timeout)`,
          }),
        );
        next({
          onReceiveMessage: (message, nextMessage) => {
            cancelTimer();
            nextMessage(message);
          },
          onCancel: () => cancelTimer(),
        });
      },
      sendStatus: (callStatus, next) => {
        cancelTimer();
        next(callStatus);
      },
    });
    return intercepted;
  };
}
