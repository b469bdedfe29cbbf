// What a bundle notifier is and what it gets from the server: the current bundle as PEM, a Clock
// and randomness for retries, a logger and its metrics. Notifiers never see the CA or the store.
import type { Logger } from 'pino';
import type { Clock } from '../../spiffe/clock.js';
import type { NotifierMetrics } from './metrics.js';

export interface BundleNotifier {
  readonly name: string;
  /** The server's own bundle may have changed: publish it if it differs from what was published. */
  bundleChanged(): void;
  close(): Promise<void>;
}

export interface NotifierDeps {
  /** The server's own trust bundle's X.509 authorities, PEM, in a stable order. */
  readonly bundlePem: () => string;
  readonly clock: Clock;
  /** In [0, 1), like Math.random: jitter of the retry delays. */
  readonly random: () => number;
  readonly logger: Logger;
  readonly metrics: NotifierMetrics;
}
