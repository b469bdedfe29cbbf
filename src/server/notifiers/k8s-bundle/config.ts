// Settings of the k8s_bundle notifier (SPIRE's k8sbundle notifier, same defaults), checked with the
// rest of the server config so a typo is reported before anything starts. Only names and paths are
// checked here: the token and CA files are read on each publish (the token rotates), not at start.
import { SigilError } from '../../../spiffe/errors.js';
import type { Checker, Raw } from '../../config-checker.js';

export const K8S_BUNDLE_NOTIFIER = 'k8s_bundle';
/** The in-pod service account files the kubelet mounts into every pod that asks for them. */
export const IN_POD_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const IN_POD_CA_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

export interface K8sBundleConfig {
  readonly namespace: string;
  readonly configMap: string;
  readonly configMapKey: string;
  /** https://HOST:PORT of the Kubernetes API, no path. */
  readonly apiServer: string;
  readonly tokenPath: string;
  readonly caPath: string;
}

const KEYS = ['namespace', 'config_map', 'config_map_key', 'api_server', 'token_path', 'ca_path'];
// Kubernetes object names: a namespace is a DNS label, a ConfigMap name a DNS subdomain, and a
// ConfigMap key may also hold "_" and upper case letters (apimachinery's IsConfigMapKey).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

/**
 * `notifiers.k8s_bundle`: `{ namespace?: "sigil", config_map?: "sigil-bundle", config_map_key?:
 * "bundle.crt", api_server?: https URL (default: the in-cluster address from KUBERNETES_SERVICE_HOST
 * and _PORT, given as `inClusterApiServer`), token_path?, ca_path? (defaults: the in-pod service
 * account files) }`. Records problems on `check`; returns null when there are any.
 */
export function checkK8sBundleConfig(
  check: Checker,
  path: string,
  input: unknown,
  inClusterApiServer: string | undefined,
): K8sBundleConfig | null {
  const before = check.problems.length;
  const raw: Raw = input === null ? {} : check.object(path, input);
  check.unknownKeys(raw, path, KEYS);
  const name = (key: string, fallback: string, pattern: RegExp, rule: string): string => {
    const value = check.string(`${path}.${key}`, raw[key] ?? fallback);
    if (value !== null && !pattern.test(value)) {
      check.problems.push(`${path}.${key}: "${value.slice(0, 80)}" is not ${rule}`);
    }
    return value ?? fallback;
  };
  const namespace = name('namespace', 'sigil', DNS_LABEL, 'a Kubernetes namespace name (DNS label)');
  const configMap = name('config_map', 'sigil-bundle', DNS_SUBDOMAIN, 'a ConfigMap name (DNS subdomain)');
  const configMapKey = name(
    'config_map_key',
    'bundle.crt',
    CONFIG_MAP_KEY,
    'a ConfigMap key (letters, digits, "-", "_", ".")',
  );
  const tokenPath = check.string(`${path}.token_path`, raw.token_path ?? IN_POD_TOKEN_PATH) ?? '';
  const caPath = check.string(`${path}.ca_path`, raw.ca_path ?? IN_POD_CA_PATH) ?? '';
  let apiServer = '';
  if (raw.api_server === undefined && inClusterApiServer === undefined) {
    check.problems.push(
      `${path}.api_server: is required outside a pod (KUBERNETES_SERVICE_HOST is not set); e.g. https://10.96.0.1:443`,
    );
  } else {
    apiServer = check.value(`${path}.api_server`, raw.api_server ?? inClusterApiServer, parseApiServer) ?? '';
  }
  if (check.problems.length > before) return null;
  return { namespace, configMap, configMapKey, apiServer, tokenPath, caPath };
}

/** The in-cluster API address from the two variables the kubelet sets in every pod, or undefined. */
export function inClusterApiServer(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host === undefined || host === '') return undefined;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function parseApiServer(input: unknown): string {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw invalid(`"${String(input).slice(0, 120)}" is not a URL (e.g. https://10.96.0.1:443)`);
  }
  if (url.protocol !== 'https:') throw invalid(`must be an https URL (got "${url.protocol}")`);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
    throw invalid(`must be https://HOST[:PORT] with nothing after it (got "${url.href}")`);
  }
  return url.origin;
}

function invalid(message: string): SigilError {
  return new SigilError('ERR_CONFIG_INVALID', message, { field: 'api_server' });
}
