// The three CLIs as a newcomer meets them (compiled bin/ scripts as real processes): a mistyped
// flag or command gets one line naming it with the closest real one, exit 2, the same way in every
// CLI; `--output json` makes errors JSON in sigil-agent as in sigil-server; help text stays within
// its layout and lists exactly the log levels the config accepts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOG_LEVELS as AGENT_LOG_LEVELS } from '../../src/agent/config.js';
import { LOG_LEVELS as SERVER_LOG_LEVELS } from '../../src/server/config.js';
import { HELP_WIDTH } from '../../src/spiffe/help-layout.js';
import { makeTempDir, runBin } from '../support/harness.js';

const { dir } = makeTempDir('sigil-cli-usage-');
// A private runtime dir so that no default socket path reaches outside this test's folder.
const env = { ...process.env, XDG_RUNTIME_DIR: dir, SIGIL_ADMIN_SOCKET: join(dir, 'none.sock') };
const cli = (name: string, args: string[]) => runBin(name, args, env, 20_000);

describe('did you mean: unknown flags and commands, the same in all three CLIs', () => {
  const cases: Array<[string, string[], string]> = [
    [
      'sigil-server',
      ['entry', 'show', '--spife-id', 'x'],
      'unknown flag --spife-id; did you mean --spiffe-id?',
    ],
    [
      'sigil-server',
      ['run', '--admin-bnd', '127.0.0.1:1'],
      'unknown flag --admin-bnd; did you mean --admin-bind?',
    ],
    [
      'sigil-agent',
      ['run', '--sokcet-path', '/x.sock'],
      'unknown flag --sokcet-path; did you mean --socket-path?',
    ],
    [
      'sigil-agent',
      ['api', 'fetch', 'x509', '--sokcet-path', '/x'],
      'unknown flag --sokcet-path; did you mean --socket-path?',
    ],
    [
      'sigil-agent',
      ['healthcheck', '--admin-sockt', '/x'],
      'unknown flag --admin-sockt; did you mean --admin-socket?',
    ],
    ['sigil-proxy', ['run', '--confg', 'x.yaml'], 'unknown flag --confg; did you mean --config?'],
    [
      'sigil-proxy',
      ['policy', 'check', '--to-prot', '80'],
      'unknown flag --to-prot; did you mean --to-port?',
    ],
    ['sigil-server', ['helthcheck'], 'unknown command "helthcheck"; did you mean "healthcheck"?'],
    ['sigil-server', ['entry', 'shwo'], 'has no subcommand "shwo"; did you mean "show"?'],
    ['sigil-agent', ['helthcheck'], 'unknown command "helthcheck"; did you mean "healthcheck"?'],
    ['sigil-agent', ['api', 'fetch', 'x590'], 'unknown command "fetch x590"; did you mean "fetch x509"?'],
    ['sigil-proxy', ['rnu'], 'unknown command "rnu"; did you mean "run"?'],
    ['sigil-proxy', ['route', 'chekc'], 'unknown command "chekc"; did you mean "check"?'],
  ];
  it.each(cases)('%s %j', async (name, args, message) => {
    const r = await cli(name, args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/Unknown option|Unexpected argument| {4}at /);
  });

  it('a flag error is one line plus where to find usage, not the raw parser message', async () => {
    for (const name of ['sigil-server', 'sigil-agent', 'sigil-proxy']) {
      const r = await cli(name, ['run', '--bogus-flag-name-nothing-is-close-to']);
      expect(r.code, name).toBe(2);
      expect(r.stderr).toBe(
        `${name} run: unknown flag --bogus-flag-name-nothing-is-close-to\nRun "${name} run --help" for usage.\n`,
      );
    }
  });
});

describe('sigil-agent --output json prints errors as JSON, as sigil-server does', () => {
  const errorOf = (stdout: string) =>
    JSON.parse(stdout) as { error: { code: string; message: string; field?: string } };

  it('usage errors: the same {"error":{code,message,field}} line on stdout as sigil-server', async () => {
    const server = await cli('sigil-server', ['entry', 'show', '--output', 'json', '--spife-id', 'x']);
    const agent = await cli('sigil-agent', [
      'api',
      'fetch',
      'x509',
      '--output',
      'json',
      '--sokcet-path',
      '/x',
    ]);
    for (const r of [server, agent]) {
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('');
      expect(errorOf(r.stdout).error).toMatchObject({
        code: 'ERR_INPUT_INVALID',
        message: expect.stringContaining('unknown flag'),
      });
    }
    expect(errorOf(agent.stdout).error.field).toBe('sokcet-path');
    const health = await cli('sigil-agent', ['healthcheck', '--output=json', '--pid', 'x', '--bogus']);
    expect(health.code).toBe(2);
    expect(errorOf(health.stdout).error.message).toBe('unknown flag --bogus');
  });

  it('runtime errors: an agent that cannot be reached is a JSON error with exit 3', async () => {
    const socket = join(dir, 'no-agent.sock');
    const api = await cli('sigil-agent', [
      'api',
      'fetch',
      'x509',
      '--socket-path',
      socket,
      '--output',
      'json',
      '--timeout',
      '3000',
    ]);
    expect(api.code).toBe(3);
    expect(errorOf(api.stdout).error.code).toBe('ERR_UNAVAILABLE');
    const health = await cli('sigil-agent', ['healthcheck', '--admin-socket', socket, '--output', 'json']);
    expect(health.code).toBe(3);
    expect(errorOf(health.stdout).error).toMatchObject({ code: 'ERR_UNAVAILABLE', field: 'admin-socket' });
    expect(health.stderr).toBe('');
  });
});

/** The offset where each row's description starts: after the name and 2+ spaces, or a continuation's indent. */
function descriptionOffsets(block: string[]): number[] {
  return block.map((line) => {
    const named = /^ {2}\S.*? {2,}(?=\S)/.exec(line);
    return named ? named[0].length : line.search(/\S/);
  });
}

/** The lines after `heading` up to the next blank line. */
function section(text: string, heading: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const end = lines.indexOf('', start);
  return lines.slice(start + 1, end);
}

describe('help text layout', () => {
  it('sigil-server --help: every command description starts at one offset, no line over the width', async () => {
    const help = (await cli('sigil-server', ['--help'])).stdout;
    const offsets = descriptionOffsets(section(help, 'Commands:'));
    expect(new Set(offsets).size, help).toBe(1);
    for (const line of help.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(HELP_WIDTH);
  });

  it('run --help of server and agent: aligned flags, no line over the width, every accepted log level', async () => {
    for (const [name, levels] of [
      ['sigil-server', SERVER_LOG_LEVELS],
      ['sigil-agent', AGENT_LOG_LEVELS],
    ] as const) {
      const help = (await cli(name, ['run', '--help'])).stdout;
      const flags = section(help, 'Flags (each overrides the config file key in brackets):');
      expect(new Set(descriptionOffsets(flags)).size, help).toBe(1);
      for (const line of help.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(HELP_WIDTH);
      const logLine = flags.find((l) => l.includes('--log-level'))!;
      expect(logLine).toContain(`${levels.join('|')} (default info)`);
      expect(levels).toEqual(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);
    }
  });

  it('sigil-agent, sigil-proxy and sigil-mesh --help stay within the width', async () => {
    for (const name of ['sigil-agent', 'sigil-proxy', 'sigil-mesh'] as const) {
      const help = (await cli(name, ['--help'])).stdout;
      expect(help).toContain(`Usage: ${name}`);
      for (const line of help.split('\n'))
        expect([...line].length, `${name}: ${line}`).toBeLessThanOrEqual(HELP_WIDTH);
    }
  });

  it('every sigil-server group and subcommand help stays within the width', async () => {
    const top = (await cli('sigil-server', ['--help'])).stdout;
    const commands = section(top, 'Commands:').map((l) => l.trim().split(/\s{2,}/)[0]!);
    for (const row of commands) {
      const [group, subs] = row.split(' ');
      const helps = [
        [group!, '--help'],
        ...(subs ?? '')
          .split('|')
          .filter(Boolean)
          .map((s) => [group!, s, '--help']),
      ];
      for (const args of helps) {
        const r = await cli('sigil-server', args);
        expect(r.code, args.join(' ')).toBe(0);
        for (const line of r.stdout.split('\n'))
          expect([...line].length, `${args.join(' ')}: ${line}`).toBeLessThanOrEqual(HELP_WIDTH);
      }
    }
  });
});
