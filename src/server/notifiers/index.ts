// Bundle notifiers by config name (`notifiers:` in the server config): each one pushes the server's
// own trust bundle somewhere when it changes. Static list, no dynamic loading (STYLE §10).
import type { Checker } from '../config-checker.js';
import { checkK8sBundleConfig, K8S_BUNDLE_NOTIFIER, type K8sBundleConfig } from './k8s-bundle/config.js';
import { createK8sBundleNotifier } from './k8s-bundle/notifier.js';
import type { BundleNotifier, NotifierDeps } from './types.js';

export interface NotifiersConfig {
  readonly k8sBundle: K8sBundleConfig | null;
}

export const NO_NOTIFIERS: NotifiersConfig = { k8sBundle: null };

/** Checks `notifiers` (absent = none); `inClusterApiServer` is k8s_bundle's default api_server. */
export function checkNotifiersConfig(
  check: Checker,
  input: unknown,
  inClusterApiServer: string | undefined,
): NotifiersConfig {
  if (input === undefined || input === null) return NO_NOTIFIERS;
  const raw = check.object('notifiers', input);
  check.unknownKeys(raw, 'notifiers', [K8S_BUNDLE_NOTIFIER]);
  const k8sBundle =
    raw[K8S_BUNDLE_NOTIFIER] === undefined
      ? null
      : checkK8sBundleConfig(
          check,
          `notifiers.${K8S_BUNDLE_NOTIFIER}`,
          raw[K8S_BUNDLE_NOTIFIER],
          inClusterApiServer,
        );
  return { k8sBundle };
}

/** Starts every configured notifier: each publishes at once, then on every `bundleChanged()`. */
export function startNotifiers(config: NotifiersConfig, deps: NotifierDeps): BundleNotifier[] {
  const notifiers: BundleNotifier[] = [];
  if (config.k8sBundle !== null) notifiers.push(createK8sBundleNotifier(config.k8sBundle, deps));
  for (const notifier of notifiers) notifier.bundleChanged();
  return notifiers;
}

export type { K8sBundleConfig } from './k8s-bundle/config.js';
export { inClusterApiServer } from './k8s-bundle/config.js';
export { createNotifierMetrics } from './metrics.js';
export type { BundleNotifier } from './types.js';
