import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type StubAdminServer, startStubAdminServer } from './stub-admin-server.test-support.js';

const ID = '6f1c2a9e-3b4d-4c5e-8f70-112233445566';
const WEB = 'spiffe://example.org/web';
const NODE = 'spiffe://example.org/agent/node1';

let stub: StubAdminServer;
beforeAll(async () => {
  stub = await startStubAdminServer({});
  await writeFile(join(stub.dir, 'not-a-bundle.pem'), 'hello\n');
});
afterAll(async () => {
  await stub.close();
});

describe('usage errors are caught before any request (exit 2, naming the flag)', () => {
  const cases: Array<[string, string[], string]> = [
    [
      'SPIFFE ID without scheme',
      ['entry', 'create', '--spiffe-id', 'example.org/web', '--node', '--selector', 'a:b'],
      '--spiffe-id: SPIFFE ID "example.org/web" must start with "spiffe://" (lowercase scheme)',
    ],
    [
      'uppercase trust domain',
      ['entry', 'create', '--spiffe-id', 'spiffe://Example.org/web'],
      '--spiffe-id: SPIFFE ID "spiffe://Example.org/web" trust domain may contain only lowercase letters',
    ],
    [
      'selector without colon',
      ['entry', 'create', '--spiffe-id', WEB, '--node', '--selector', 'unixuid'],
      '--selector: selector "unixuid" must be "type:value" (e.g. "unix:uid:1000")',
    ],
    [
      'selector type in uppercase',
      ['entry', 'show', '--selector', 'Unix:uid:1'],
      '--selector: selector "Unix:uid:1" type must be lowercase letters, digits and "_"',
    ],
    [
      'TTL with a bad unit',
      ['entry', 'create', '--spiffe-id', WEB, '--node', '--selector', 'a:b', '--x509-svid-ttl', '90x'],
      '--x509-svid-ttl: "90x" is not a duration (examples: 90s, 30m, 1h)',
    ],
    ['zero TTL', ['token', 'generate', '--ttl', '0'], '--ttl: "0" must be greater than zero'],
    ['bad --output', ['agent', 'list', '--output', 'yaml'], '--output: "yaml" is not one of text, json'],
    [
      'unknown flag',
      ['entry', 'show', '--spife-id', WEB],
      'unknown flag --spife-id; did you mean --spiffe-id?',
    ],
    ['missing --spiffe-id', ['x509', 'mint'], 'missing required flag --spiffe-id'],
    ['missing --audience', ['jwt', 'mint', '--spiffe-id', WEB], 'missing required flag --audience'],
    ['bad --format', ['bundle', 'show', '--format', 'der'], '--format: "der" is not one of pem, spiffe'],
    [
      '--expires-at not a time',
      ['entry', 'create', '--spiffe-id', WEB, '--node', '--selector', 'a:b', '--expires-at', 'tomorrow'],
      '--expires-at: "tomorrow" is not a time (RFC 3339 such as 2030-01-02T03:04:05Z, or Unix seconds)',
    ],
    [
      '--expires-at on a day that does not exist',
      ['entry', 'update', '--id', ID, '--expires-at', '2030-02-30T00:00:00Z'],
      '--expires-at: "2030-02-30T00:00:00Z" is not a time',
    ],
    [
      '--parent-id with --node',
      ['entry', 'create', '--spiffe-id', WEB, '--parent-id', NODE, '--node', '--selector', 'a:b'],
      '--parent-id and --node exclude each other',
    ],
    [
      'no selector',
      ['entry', 'create', '--spiffe-id', WEB, '--parent-id', NODE],
      'missing required flag --selector',
    ],
    [
      'no parent',
      ['entry', 'create', '--spiffe-id', WEB, '--selector', 'a:b'],
      'missing required flag --parent-id (or --node for a node entry)',
    ],
    [
      'entry ID not a UUID',
      ['entry', 'show', '--id', 'not-a-uuid'],
      '--id: "not-a-uuid" is not an entry ID (a UUID)',
    ],
    [
      'bad --match',
      ['entry', 'show', '--selector', 'a:b', '--match', 'fuzzy'],
      '--match: "fuzzy" is not one of exact, subset, superset, any',
    ],
    ['--match without --selector', ['entry', 'show', '--match', 'any'], '--match needs --selector'],
    [
      'bad DNS name',
      ['x509', 'mint', '--spiffe-id', WEB, '--dns', 'bad_name!'],
      '--dns: "bad_name!" is not a valid DNS name: label "bad_name!" may contain only letters, digits and "-"',
    ],
    [
      'DNS name not lowercase',
      ['x509', 'mint', '--spiffe-id', WEB, '--dns', 'Web.Example.org'],
      '--dns: "Web.Example.org" is not lowercase; DNS names are case-insensitive, write it as "web.example.org"',
    ],
    [
      'DNS name that is an IP address',
      ['entry', 'update', '--id', ID, '--dns', '10.0.0.1'],
      '--dns: "10.0.0.1" is not a valid DNS name: it is an IP address',
    ],
    [
      'federated trust domain with a path',
      ['entry', 'update', '--id', ID, '--federates-with', 'spiffe://other.org/x'],
      '--federates-with: trust domain "spiffe://other.org/x" must not have a path',
    ],
    [
      'workload ID without a path',
      ['x509', 'mint', '--spiffe-id', 'spiffe://example.org'],
      '--spiffe-id: SPIFFE ID "spiffe://example.org" must have a path',
    ],
    [
      'agent ID with an empty segment',
      ['agent', 'show', '--spiffe-id', 'spiffe://example.org/a//b'],
      'path must not contain empty segments ("//")',
    ],
    [
      'missing --data file',
      ['entry', 'create', '--data', '/nonexistent/batch.json'],
      '--data: cannot read "/nonexistent/batch.json": ENOENT',
    ],
    [
      '--data with field flags',
      ['entry', 'create', '--data', 'x.json', '--spiffe-id', WEB],
      '--data cannot be combined with --spiffe-id',
    ],
    [
      'bundle file without a certificate',
      ['bundle', 'set', '--id', 'other.org', '--path', 'PEM_FILE', '--format', 'pem'],
      '--path: no "CERTIFICATE" PEM block found',
    ],
    [
      'bad trust domain for --id',
      ['bundle', 'delete', '--id', 'Bad.Org'],
      '--id: trust domain "Bad.Org" trust domain may',
    ],
    [
      'single flag given twice',
      ['agent', 'show', '--spiffe-id', WEB, '--spiffe-id', NODE],
      '--spiffe-id may be given only once',
    ],
    ['flag without its value', ['agent', 'show', '--spiffe-id'], '--spiffe-id needs a value (ID)'],
    ['stray positional argument', ['entry', 'show', 'extra'], 'unexpected argument "extra"'],
    ['value for a boolean flag', ['entry', 'update', '--id', ID, '--admin=yes'], '--admin takes no value'],
    [
      '--admin with --no-admin',
      ['entry', 'update', '--id', ID, '--admin', '--no-admin'],
      '--admin and --no-admin exclude each other',
    ],
    ['update without changes', ['entry', 'update', '--id', ID], 'nothing to change'],
    [
      'empty audience',
      ['jwt', 'mint', '--spiffe-id', WEB, '--audience', ''],
      '--audience: audience values must be non-empty strings',
    ],
  ];

  it.each(cases)('%s', async (_name, argv, message) => {
    const args = argv.map((a) => (a === 'PEM_FILE' ? join(stub.dir, 'not-a-bundle.pem') : a));
    const before = stub.requests.length;
    const run = await stub.cli(args);
    expect(run.stderr).toContain(message);
    expect(run.stderr).toMatch(/^sigil-server [a-z0-9]+ ?[a-z]*: /);
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(stub.requests.length).toBe(before);
  });

  it('prints usage errors as the error JSON with --output json', async () => {
    const run = await stub.cli(['x509', 'mint', '--spiffe-id', 'nope', '--output', 'json']);
    expect(run).toMatchObject({ code: 2, stderr: '' });
    expect(JSON.parse(run.stdout)).toEqual({
      error: {
        code: 'ERR_SPIFFE_ID_INVALID',
        message: '--spiffe-id: SPIFFE ID "nope" must start with "spiffe://" (lowercase scheme)',
        field: 'spiffe-id',
      },
    });
  });
});

describe('help', () => {
  it('top-level help lists every command and the exit codes', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    for (const text of [
      'run',
      'healthcheck',
      'entry create|show|update|delete',
      'token generate',
      'agent list|show|evict|ban',
      'bundle show|list|set|delete',
      'x509 mint',
      'jwt mint',
      'Exit codes:',
      '3  cannot reach the server',
    ]) {
      expect(run.stdout).toContain(text);
    }
    expect((await runCli(['-h'])).stdout).toBe(run.stdout);
  });

  it('without a command prints usage to stderr and exits 2', async () => {
    const run = await runCli([]);
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toContain('Usage: sigil-server <command>');
  });

  it.each([
    [
      'entry create',
      [
        '--spiffe-id ID',
        '--parent-id ID',
        '--node',
        '--selector TYPE:VALUE',
        '--x509-svid-ttl DURATION',
        '--jwt-svid-ttl DURATION',
        '--dns NAME',
        '--admin',
        '--downstream',
        '--federates-with TD',
        '--hint TEXT',
        '--expires-at TIME',
        '--id UUID',
        '--data FILE',
      ],
    ],
    [
      'entry show',
      ['--id UUID', '--selector TYPE:VALUE', '--match exact|subset|superset|any', 'default: exact'],
    ],
    ['entry update', ['--id UUID', '--no-admin', '--no-downstream', 'required']],
    ['entry delete', ['--id UUID']],
    ['healthcheck', ['--shallow']],
    ['token generate', ['--ttl DURATION', 'default: 10m']],
    ['agent list', []],
    ['agent show', ['--spiffe-id ID']],
    ['agent evict', ['--spiffe-id ID']],
    ['agent ban', ['--spiffe-id ID']],
    ['bundle show', ['--format pem|spiffe', 'default: pem']],
    ['bundle list', ['--format pem|spiffe']],
    ['bundle set', ['--id TD', '--path FILE', 'default: detected from the file']],
    ['bundle delete', ['--id TD']],
    ['x509 mint', ['--spiffe-id ID', '--ttl DURATION', 'default: 1h', '--dns NAME', '--write DIR']],
    ['jwt mint', ['--audience AUD', 'repeatable', 'default: 5m']],
  ])('%s --help lists its flags with defaults', async (command, flags) => {
    const run = await runCli([...command.split(' '), '--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain(`Usage: sigil-server ${command} [flags]`);
    for (const flag of [
      ...flags,
      '--admin-socket PATH',
      '/run/sigil-server/private/admin.sock',
      '/tmp/sigil-server-<uid>/',
      '--output text|json',
      '-h, --help',
    ]) {
      expect(run.stdout).toContain(flag);
    }
  });

  it('help wins over missing required flags', async () => {
    expect((await runCli(['agent', 'ban', '-h'])).code).toBe(0);
  });

  it('group help lists subcommands; a bare or unknown subcommand is a usage error', async () => {
    const help = await runCli(['bundle', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('bundle set');
    const bare = await runCli(['agent']);
    expect(bare).toMatchObject({ code: 2, stdout: '' });
    expect(bare.stderr).toContain('sigil-server agent: needs a subcommand');
    const unknown = await runCli(['entry', 'list']);
    expect(unknown.stderr).toContain('sigil-server entry: has no subcommand "list"');
    expect(unknown.code).toBe(2);
  });

  it('an unknown command is a usage error', async () => {
    const run = await runCli(['entries']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('sigil-server: unknown command "entries"');
  });
});

describe('bin scripts (compiled dist/, run as executables)', () => {
  const exec = promisify(execFile);
  const bin = (name: string) => fileURLToPath(new URL(`../../../bin/${name}`, import.meta.url));
  const runBin = async (name: string, args: string[]) => {
    try {
      const { stdout, stderr } = await exec(bin(name), args);
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('sigil-server --help prints usage and exits 0', async () => {
    const run = await runBin('sigil-server', ['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Exit codes:');
  });

  it('sigil-server passes the exit code through', async () => {
    const run = await runBin('sigil-server', ['healthcheck', '--admin-socket', join(stub.dir, 'none.sock')]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('is sigil-server running?');
  });

  it('sigil-proxy answers --help, and refuses an unknown command with exit 2', async () => {
    const help = await runBin('sigil-proxy', ['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('Usage: sigil-proxy <command>');
    expect(help.stdout).toContain('policy check');
    const unknown = await runBin('sigil-proxy', ['fly']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('sigil-proxy: unknown command "fly"');
  });

  it('sigil-agent answers --help, and refuses an unknown command with exit 2', async () => {
    const help = await runBin('sigil-agent', ['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('Usage: sigil-agent <command>');
    expect(help.stdout).toContain('debug explain --pid P');
    const unknown = await runBin('sigil-agent', ['fly']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('sigil-agent: unknown command "fly"');
  });
});
