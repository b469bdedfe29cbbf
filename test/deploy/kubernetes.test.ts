// deploy/kubernetes/ without a cluster: every document is checked against the Kubernetes OpenAPI
// schemas (kubernetes-models, vendored in node_modules) with unknown fields refused, and the
// fields Sigil relies on (mounts, ports, probes, args, k8s_sat, the bundle ConfigMap) against the
// configs the real parsers read. Broken copies show that each kind of mistake is caught.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT, startServerProcess } from '../support/harness.js';
import { validateManifest } from './k8s-schema.js';
import { checkWiring, type Json, loadManifests } from './k8s-wiring.js';

const scratch = makeTempDir('sigil-k8s-manifests-');
const cleanups: Array<() => unknown> = [scratch.cleanup];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const docs = loadManifests();
const IMAGE = 'sigil:0.1.0';

function broken(edit: (docs: Json[]) => void): string[] {
  const copy = structuredClone(docs);
  edit(copy);
  return checkWiring(copy, scratch.dir);
}
const byName = (list: Json[], kind: string, name: string) =>
  list.find((d) => d.kind === kind && d.metadata.name === name)!;
const podOf = (list: Json[], kind: string, name: string) => byName(list, kind, name).spec.template.spec;

describe('deploy/kubernetes', () => {
  it('holds the server, agent and example app', () => {
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(
      expect.arrayContaining([
        'StatefulSet/sigil-server',
        'DaemonSet/sigil-agent',
        'Deployment/greeter',
        'Role/sigil-server-bundle',
      ]),
    );
  });

  it.each(docs.map((d) => [`${d.kind} ${d.metadata.namespace ?? ''}/${d.metadata.name}`, d] as const))(
    '%s is valid against the Kubernetes OpenAPI schema, with no unknown field',
    (_, doc) => {
      expect(validateManifest(doc)).toEqual([]);
    },
  );

  it('refuses unknown and mistyped fields (the strict check is not vacuous)', () => {
    const sts = structuredClone(byName(docs, 'StatefulSet', 'sigil-server'));
    sts.spec.template.spec.containers[0].volumeMounts[0].mountpath = '/etc/sigil';
    sts.spec.template.spec.containers[0].ports[0].containerPort = '8081';
    expect(validateManifest(sts)).toEqual([
      expect.stringContaining('containerPort must be integer'),
      expect.stringContaining('.spec.template.spec.containers[0].volumeMounts[0].mountpath: unknown field'),
    ]);
  });

  it('wires mounts, ports, probes and args to what the binaries parse', () => {
    expect(checkWiring(docs, scratch.dir)).toEqual([]);
  });

  it.each([
    [
      'a socket outside every mount',
      (d: Json[]) => {
        podOf(d, 'DaemonSet', 'sigil-agent').containers[0].volumeMounts[2].mountPath = '/run/agent';
      },
      'socket_path /run/sigil-agent/public/api.sock is under no volumeMount',
    ],
    [
      'a wrong containerPort',
      (d: Json[]) => {
        podOf(d, 'StatefulSet', 'sigil-server').containers[0].ports[0].containerPort = 8080;
      },
      'sigil-server containerPort agent-api is 8080, the config says 8081',
    ],
    [
      'a wrong Service port',
      (d: Json[]) => {
        byName(d, 'Service', 'greeter').spec.ports[0].port = 443;
      },
      'Service greeter mtls port is 443',
    ],
    [
      'a probe on another socket',
      (d: Json[]) => {
        podOf(d, 'DaemonSet', 'sigil-agent').containers[0].livenessProbe.exec.command[3] = '/tmp/admin.sock';
      },
      'sigil-agent: livenessProbe uses another admin socket',
    ],
    [
      'a flag the CLI lacks',
      (d: Json[]) => {
        podOf(d, 'StatefulSet', 'sigil-server').containers[0].args.push('--metrics-port', '9988');
      },
      'sigil-server run has no flag --metrics-port',
    ],
    [
      'the sidecar as a plain container',
      (d: Json[]) => {
        delete podOf(d, 'Deployment', 'greeter').initContainers[0].restartPolicy;
      },
      'sigil-proxy is not a native sidecar',
    ],
    [
      'the agent reading another bundle key',
      (d: Json[]) => {
        const cm = byName(d, 'ConfigMap', 'sigil-agent');
        cm.data['agent.yaml'] = cm.data['agent.yaml'].replace('bundle.crt', 'bundle.pem');
      },
      "trust_bundle_path is not the notifier's ConfigMap sigil-bundle key bundle.crt",
    ],
    [
      'a token audience the server does not accept',
      (d: Json[]) => {
        podOf(d, 'DaemonSet', 'sigil-agent').volumes[4].projected.sources[0].serviceAccountToken.audience =
          'api';
      },
      'k8s_sat: token audience differs from the server',
    ],
  ])('catches %s', (_, edit, problem) => {
    // Every problem found names this mistake (moving one mount can strand two paths).
    const problems = broken(edit);
    expect(problems).toContainEqual(expect.stringContaining(problem));
    expect(problems.length).toBeLessThanOrEqual(2);
  });

  it('registers the example app with the entry commands its header documents, as written', async () => {
    const header = readFileSync(path.join(REPO_ROOT, 'deploy', 'kubernetes', '30-app.yaml'), 'utf8');
    const prefix = 'kubectl -n sigil exec sigil-server-0 -- sigil-server ';
    const commands = header
      .replace(/\\\n#\s+/g, ' ')
      .split('\n')
      .map((line) => line.replace(/^#\s*/, ''))
      .filter((line) => line.startsWith(prefix))
      .map((line) => line.slice(prefix.length).split(/\s+/));
    expect(commands.map((c) => c.slice(0, 2).join(' '))).toEqual(['entry create', 'entry create']);
    const server = await startServerProcess();
    // Reverse order: the server stops before its data dir goes.
    cleanups.push(
      () => rmSync(server.dataDir, { recursive: true, force: true }),
      () => server.stop(),
    );
    for (const args of commands) {
      const res = await server.cli(...args);
      expect(res.code, res.stderr).toBe(0);
    }
    const shown = await server.cli('entry', 'show', '--selector', 'unix:uid:10002', '--output', 'json');
    expect(shown.stdout).toContain('spiffe://example.org/ns/demo/sa/greeter');
  });

  it(`uses one image, ${IMAGE}, which the Dockerfile's documented build produces`, () => {
    const ours = docs
      .filter((d) => d.spec?.template)
      .flatMap((d) => [...(d.spec.template.spec.initContainers ?? []), ...d.spec.template.spec.containers]);
    expect(new Set(ours.map((c: Json) => c.image))).toEqual(new Set([IMAGE]));
    const dockerfile = readFileSync(path.join(REPO_ROOT, 'deploy', 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`docker build -f deploy/Dockerfile -t ${IMAGE} .`);
    for (const file of ['10-server.yaml', '20-agent.yaml', '30-app.yaml']) {
      expect(readFileSync(path.join(REPO_ROOT, 'deploy', 'kubernetes', file), 'utf8')).not.toMatch(
        /image: (?!sigil:0\.1\.0)/,
      );
    }
  });
});
