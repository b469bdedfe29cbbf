// The agent's pino logger: JSON lines, secrets redacted by path (a second line of defence; code never
// logs keys or tokens), and every error-level line reported by the component that wrote it, for
// sigil_agent_errors_total. Components get their name as one child binding ({ component }), given
// once where they are built (agent.ts); a second binding of the same key would print it twice.
import pino, { type DestinationStream, type Logger } from 'pino';

const REDACTED_PATHS = ['key', '*.key', 'token', '*.token', 'joinToken', '*.joinToken'];
const ERROR_LEVEL = pino.levels.values.error!;

export function createAgentLogger(
  level: string,
  /** Called for each error or fatal line with its `component` binding ('agent' for the root logger). */
  onErrorLine: (component: string) => void,
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level,
      base: { service: 'sigil-agent' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: {
        logMethod(args, method, lineLevel) {
          if (lineLevel >= ERROR_LEVEL) onErrorLine(String(this.bindings().component ?? 'agent'));
          method.apply(this, args);
        },
      },
    },
    destination,
  );
}
