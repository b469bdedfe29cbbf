// notifiers.k8s_bundle as the server config parser reads it: SPIRE's defaults, the in-cluster API
// address from the environment, and each bad value named by its dotted path.
import { describe, expect, it } from 'vitest';
import { checkServerConfig } from '../../config.js';
import { inClusterApiServer } from './config.js';

const base = { trust_domain: 'example.org', data_dir: '/var/lib/sigil' };

function problemsOf(notifiers: unknown, kubernetesApiServer?: string): string {
  try {
    checkServerConfig({ ...base, notifiers }, 'config test.yaml', '/', { kubernetesApiServer });
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

describe('notifiers.k8s_bundle config', () => {
  it('defaults to SPIRE k8sbundle names and the in-pod service account files', () => {
    const config = checkServerConfig({ ...base, notifiers: { k8s_bundle: null } }, 'x', '/', {
      kubernetesApiServer: inClusterApiServer({
        KUBERNETES_SERVICE_HOST: '10.96.0.1',
        KUBERNETES_SERVICE_PORT: '443',
      }),
    });
    expect(config.notifiers.k8sBundle).toEqual({
      namespace: 'sigil',
      configMap: 'sigil-bundle',
      configMapKey: 'bundle.crt',
      apiServer: 'https://10.96.0.1',
      tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      caPath: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    });
  });

  it('has no notifier unless configured', () => {
    expect(checkServerConfig(base, 'x', '/').notifiers.k8sBundle).toBeNull();
  });

  it('brackets an IPv6 service host and keeps a non-default port', () => {
    expect(inClusterApiServer({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' })).toBe(
      'https://[fd00::1]:6443',
    );
    expect(inClusterApiServer({})).toBeUndefined();
  });

  it.each([
    [{ k8s_bundel: {} }, 'notifiers.k8s_bundel: unknown key (known keys: k8s_bundle)'],
    [{ k8s_bundle: { configmap: 'x' } }, 'notifiers.k8s_bundle.configmap: unknown key'],
    [{ k8s_bundle: {} }, 'notifiers.k8s_bundle.api_server: is required outside a pod'],
    [
      { k8s_bundle: { api_server: 'http://10.0.0.1' } },
      'notifiers.k8s_bundle.api_server: must be an https URL',
    ],
    [{ k8s_bundle: { api_server: 'https://k8s/api' } }, 'must be https://HOST[:PORT] with nothing after it'],
    [
      { k8s_bundle: { api_server: 'https://k8s', namespace: 'Sigil' } },
      'notifiers.k8s_bundle.namespace: "Sigil" is not',
    ],
    [
      { k8s_bundle: { api_server: 'https://k8s', config_map_key: 'a/b' } },
      'notifiers.k8s_bundle.config_map_key: "a/b"',
    ],
    [
      { k8s_bundle: { api_server: 'https://k8s', token_path: '' } },
      'notifiers.k8s_bundle.token_path: must be a non-empty string',
    ],
    ['yes', 'notifiers: must be a mapping'],
  ])('refuses %j', (notifiers, problem) => {
    expect(problemsOf(notifiers)).toContain(problem);
  });
});
