// Publishes the server's own trust bundle (PEM) into one key of a Kubernetes ConfigMap, so agents
// and workloads in the cluster mount it instead of an operator copying it by hand (SPIRE's
// k8sbundle notifier). Publishes at start and whenever the bundle changes; a failed write is
// retried with backoff until it lands or a newer bundle replaces it. Only the key is written
// (a JSON merge patch), so other keys in the ConfigMap are left alone.
import type { Logger } from 'pino';
import { Backoff } from '../../../spiffe/backoff.js';
import { SigilError } from '../../../spiffe/errors.js';
import type { BundleNotifier, NotifierDeps } from '../types.js';
import type { K8sBundleConfig } from './config.js';
import { KubeClient, statusMessage } from './kube-client.js';

/** 1s doubling to 30s: a missing RBAC grant or an API server restart is fixed in minutes, not ms. */
const RETRY_BACKOFF = Backoff.create({ initialMs: 1_000, maxMs: 30_000 });

export function createK8sBundleNotifier(config: K8sBundleConfig, deps: NotifierDeps): BundleNotifier {
  return new K8sBundleNotifier(config, deps, new KubeClient({ ...config, clock: deps.clock }));
}

class K8sBundleNotifier implements BundleNotifier {
  readonly name = 'k8s_bundle';
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  /** The PEM the ConfigMap is known to hold; null until the first write lands. */
  private published: string | null = null;
  private running = false;
  private pending = false;
  private failures = 0;
  private cancelRetry = () => {};

  constructor(
    private readonly config: K8sBundleConfig,
    private readonly deps: NotifierDeps,
    private readonly client: KubeClient,
  ) {
    this.logger = deps.logger.child({
      notifier: this.name,
      namespace: config.namespace,
      configMap: config.configMap,
    });
  }

  /** Publishes now (or right after the write in flight); a scheduled retry is brought forward. */
  bundleChanged(): void {
    if (this.abort.signal.aborted) return;
    this.cancelRetry();
    this.pending = true;
    if (!this.running) void this.drain();
  }

  async close(): Promise<void> {
    this.cancelRetry();
    this.abort.abort();
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.pending && !this.abort.signal.aborted) {
      this.pending = false;
      const pem = this.deps.bundlePem();
      if (pem === this.published) continue;
      try {
        const how = await this.publish(pem);
        this.published = pem;
        this.failures = 0;
        this.deps.metrics.publishes.inc({ notifier: this.name, result: 'success' });
        this.logger.info({ how, key: this.config.configMapKey }, 'Trust bundle published to ConfigMap');
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.failures += 1;
        this.deps.metrics.publishes.inc({ notifier: this.name, result: 'failure' });
        const delayMs = RETRY_BACKOFF.afterFailures(this.failures - 1).delayMs(this.deps.random);
        this.logger.warn(
          { error: (err as Error).message, failures: this.failures, retryInMs: Math.round(delayMs) },
          'Publishing the trust bundle to ConfigMap failed; retrying',
        );
        // A newer bundle arriving meanwhile cancels this and publishes at once (bundleChanged).
        if (!this.pending) this.cancelRetry = this.deps.clock.setTimer(delayMs, () => this.bundleChanged());
      }
    }
    this.running = false;
  }

  /** Patches the key in place; creates the ConfigMap when it does not exist yet. */
  private async publish(pem: string): Promise<'patched' | 'created'> {
    const { namespace, configMap, configMapKey } = this.config;
    const collection = `/api/v1/namespaces/${namespace}/configmaps`;
    const patch = () =>
      this.client.send(
        'PATCH',
        `${collection}/${configMap}`,
        { data: { [configMapKey]: pem } },
        'application/merge-patch+json',
        this.abort.signal,
      );
    let res = await patch();
    if (res.status === 404) {
      res = await this.client.send(
        'POST',
        collection,
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: configMap, namespace },
          data: { [configMapKey]: pem },
        },
        'application/json',
        this.abort.signal,
      );
      if (res.status === 201 || res.status === 200) return 'created';
      // Created by someone else between our PATCH and POST: patch theirs.
      if (res.status === 409) res = await patch();
    }
    if (res.status === 200) return 'patched';
    throw new SigilError('ERR_UNAVAILABLE', `ConfigMap ${namespace}/${configMap}: ${statusMessage(res)}`);
  }
}
