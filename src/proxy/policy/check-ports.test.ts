// `policy check --to-port`: rules name the app's port; given the listener's, the answer says so.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../command-flags.test-support.js';
import { policyCommand } from './check-cli.js';

const WEB = 'spiffe://example.org/web';
let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-policy-ports-'));
  writeFileSync(
    file('policy.yaml'),
    `policies:
  - name: allow-web
    action: ALLOW
    rules:
      - from: { principals: ["${WEB}"] }
        to: { ports: [8080, 9090] }
`,
  );
  writeFileSync(
    file('proxy.yaml'),
    `policy_file: policy.yaml
inbound:
  - { name: api, listen: 0.0.0.0:15001, app: 127.0.0.1:8080 }
`,
  );
  writeFileSync(
    file('any-port.yaml'),
    'policies:\n  - { name: a, action: ALLOW, rules: [{ from: { principals: ["*"] } }] }\n',
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const check = (config: string, ...args: string[]) =>
  runCaptured(policyCommand, ['check', '--config', file(config), '--from', WEB, ...args]);

describe('policy check --to-port', () => {
  it("given an inbound listener's listen port, names it and the app port it forwards to", async () => {
    const r = await check('proxy.yaml', '--to-port', '15001');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(
      'DENY\n  default deny: no ALLOW rule matched\n' +
        "  note: no rule covers port 15001; rules' ports are the app's ports (the inbound listener's upstream), e.g. 8080, 9090; " +
        `15001 is the listen port of inbound listener "api" in ${file('proxy.yaml')}, which forwards to app port 8080: try --to-port 8080\n`,
    );
    expect((await check('proxy.yaml', '--to-port', '8080')).code).toBe(0);
  });

  it('says which port rules mean for any port no rule names, in text and JSON', async () => {
    const r = await check('policy.yaml', '--to-port', '7000');
    expect(r.stdout).toContain(
      "  note: no rule covers port 7000; rules' ports are the app's ports (the inbound listener's upstream), e.g. 8080, 9090\n",
    );
    const json = JSON.parse((await check('policy.yaml', '--to-port', '7000', '--output', 'json')).stdout);
    expect(json.note).toMatch(/^no rule covers port 7000; rules' ports are the app's ports/);
  });

  it('adds no note when a rule covers the port, or names no ports at all', async () => {
    expect((await check('policy.yaml', '--to-port', '9090')).stdout).not.toContain('note:');
    const any = await check('any-port.yaml', '--to-port', '15001');
    expect(any).toMatchObject({ code: 0 });
    expect(any.stdout).not.toContain('note:');
  });

  it('explains the port in --help', async () => {
    const { stdout } = await runCaptured(policyCommand, ['check', '--help']);
    expect(stdout).toContain("the app's port");
  });
});
