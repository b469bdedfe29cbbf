import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isSigilError } from '../spiffe/errors.js';
import { portPlan } from './layout.js';
import { checkPortsFree, isPortFree } from './ports.js';

let held: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => (held ? held.close(resolve) : resolve(undefined)));
  held = undefined;
});

async function holdPort(): Promise<number> {
  held = createServer();
  await new Promise<void>((resolve) => held!.listen(0, '127.0.0.1', () => resolve()));
  return (held.address() as { port: number }).port;
}

describe('checkPortsFree', () => {
  it('names the port in use, what it was for, and the flag that moves the block', async () => {
    const port = await holdPort();
    expect(await isPortFree(port)).toBe(false);
    const err = await checkPortsFree(portPlan(port), port).catch((e: unknown) => e);
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toBe(
      `port ${port} (the server's agent API) is in use; start with --base-port N to use ports N to N+10 instead of ${port} to ${port + 10}`,
    );
    expect((err as { field?: string }).field).toBe('--base-port');
  });

  it('passes once the port is free again', async () => {
    const port = await holdPort();
    await new Promise((resolve) => held!.close(resolve));
    held = undefined;
    expect(await isPortFree(port)).toBe(true);
  });
});
