// `healthcheck`: for container probes and scripts. Exit 0 healthy, 3 unreachable, 4 unhealthy; the
// 503 of a not-ready server is the expected "unhealthy" answer here, not a refusal.
import { AdminApiError } from '../admin-client.js';
import { type CommandSpec, printRaw } from '../command.js';

const healthcheck: CommandSpec = {
  name: 'healthcheck',
  summary: 'Check that the server is alive (/healthz) and, unless --shallow, ready to serve (/readyz).',
  flags: { shallow: { type: 'boolean', description: 'check /healthz only, not datastore and CA readiness' } },
  async run(ctx, flags) {
    const paths = flags.boolean('shallow') ? ['/healthz'] : ['/healthz', '/readyz'];
    for (const path of paths) {
      try {
        const response = await ctx.client().request('GET', path);
        if (path === paths[paths.length - 1]) {
          if (ctx.output === 'json') printRaw(ctx, response);
          else ctx.io.stdout.write('Server is healthy\n');
        }
      } catch (err) {
        if (!(err instanceof AdminApiError)) throw err;
        if (ctx.output === 'json') ctx.io.stdout.write(`${err.jsonText()}\n`);
        else
          ctx.io.stderr.write(`Server is unhealthy: ${path} answered ${err.status}: ${err.wire.message}\n`);
        return 4;
      }
    }
    return 0;
  },
};

export const healthcheckCommands: readonly CommandSpec[] = [healthcheck];
