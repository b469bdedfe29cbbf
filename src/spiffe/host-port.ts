// HOST:PORT as config files and flags give it (bind addresses, metrics_bind): one parser for the
// server and the agent, so that both accept and refuse the same forms.
import { quote, SigilError } from './errors.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `127.0.0.1:8081`, `[::1]:8081`, or `:8081` (all interfaces); throws ERR_INPUT_INVALID otherwise. */
export function parseHostPort(input: unknown): HostPort {
  const text = String(input);
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `${quote(text)} is not HOST:PORT (e.g. 127.0.0.1:8081, [::1]:8081)`,
    );
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}
