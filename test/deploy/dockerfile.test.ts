// deploy/Dockerfile without docker: parsed into stages, it must run as a non-root user, carry no
// compiler or bench/ in the final stage, copy only sources that exist (and that its
// .dockerignore lets into the build context), and document the build command the manifests use.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/harness.js';

interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly body: Instruction[];
}

const DOCKERFILE = path.join(REPO_ROOT, 'deploy', 'Dockerfile');
const text = readFileSync(DOCKERFILE, 'utf8');

/** Instructions (continuation lines joined, comments dropped) grouped by FROM. */
function parseDockerfile(source: string): Stage[] {
  const lines = source
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line)!;
    if (op!.toUpperCase() === 'FROM') {
      const [image, as, name] = args!.split(/\s+/);
      stages.push({ from: image!, name: as?.toUpperCase() === 'AS' ? name : undefined, body: [] });
    } else stages.at(-1)!.body.push({ op: op!.toUpperCase(), args: args! });
  }
  return stages;
}

const stages = parseDockerfile(text);
const final = stages.at(-1)!;
const ignore = readFileSync(`${DOCKERFILE}.dockerignore`, 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('!'))
  .map((l) => l.slice(1));

describe('deploy/Dockerfile', () => {
  it('documents the build and run commands', () => {
    expect(text).toContain('docker build -f deploy/Dockerfile -t sigil:0.1.0 .');
    const header = text.replace(/\\\n#\s+/g, ' ');
    expect(header).toMatch(/docker run .*sigil:0\.1\.0 run --config/);
  });

  it('runs the final stage as a non-root user', () => {
    const users = final.body.filter((i) => i.op === 'USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
  });

  it('builds in one stage and ships a slim final stage with no compiler, dev dependencies or bench/', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(final.from).toMatch(/-slim$|distroless/);
    const finalText = final.body.map((i) => `${i.op} ${i.args}`).join('\n');
    expect(finalText).not.toMatch(/\b(g\+\+|gcc|make|python3|build-essential|apt-get install)\b/);
    expect(finalText).not.toMatch(/bench/);
    const build = stages.find((s) => s.name === 'build')!;
    expect(build.body.some((i) => i.op === 'RUN' && i.args.includes('npm prune --omit=dev'))).toBe(true);
    expect(build.body.some((i) => i.op === 'COPY' && i.args.includes('bench'))).toBe(false);
  });

  it('copies only sources that exist and that the .dockerignore lets into the context', () => {
    const copies = stages
      .flatMap((s) => s.body)
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        expect(existsSync(path.join(REPO_ROOT, source)), `COPY ${source}`).toBe(true);
        expect(ignore, `${source} is kept out of the build context`).toContain(source.replace(/\/$/, ''));
      }
    }
    const fromBuild = final.body.filter((i) => i.op === 'COPY' && i.args.startsWith('--from=build'));
    // What the build stage makes: node_modules (npm ci), dist (tsc's outDir), proto (copied in).
    expect(fromBuild.map((i) => i.args.split(/\s+/)[1])).toEqual([
      '/src/node_modules',
      '/src/dist',
      '/src/proto',
    ]);
  });

  it('starts a binary that bin/ provides', () => {
    const entrypoint = JSON.parse(final.body.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    expect(existsSync(path.join(REPO_ROOT, 'bin', entrypoint[0]!))).toBe(true);
  });
});
