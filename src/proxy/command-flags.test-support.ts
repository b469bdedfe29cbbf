// For tests of the `sigil-proxy policy|route` commands: runs one with its output captured.
import type { CommandIo } from './command-flags.js';

export interface CommandRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCaptured(
  command: (args: readonly string[], io: CommandIo) => Promise<number>,
  args: readonly string[],
): Promise<CommandRun> {
  let stdout = '';
  let stderr = '';
  const code = await command(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}
