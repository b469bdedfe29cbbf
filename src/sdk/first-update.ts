// What X509Source and JwtSource share: start a watch, resolve once its first value has arrived, and
// fail (closing the source) when the caller aborts or the watch ends for good before that.
import { SigilError } from '../spiffe/errors.js';

export interface FirstUpdateOptions {
  signal?: AbortSignal;
  onError?: (err: SigilError) => void;
}

export function untilFirstUpdate<T>(
  what: string,
  options: FirstUpdateOptions,
  close: () => void,
  watch: (onUpdate: (value: T) => void) => Promise<void>,
  apply: (value: T) => void,
): Promise<void> {
  let received = false;
  return new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      close();
      reject(err);
    };
    const aborted = () =>
      fail(
        new SigilError('ERR_UNAVAILABLE', `${what}: creation aborted by the caller`, { reason: 'aborted' }),
      );
    if (options.signal?.aborted) return aborted();
    options.signal?.addEventListener('abort', aborted, { once: true });
    watch((value) => {
      received = true;
      apply(value);
      resolve();
    })
      // Only a final error (INVALID_ARGUMENT, UNIMPLEMENTED) ends the watch; before the first
      // update it fails creation, afterwards the source keeps serving its last value.
      .catch((err: unknown) => {
        if (!received) fail(err);
        else options.onError?.(err as SigilError);
      });
  });
}
