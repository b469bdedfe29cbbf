// For tests of watches built on file-watch.ts (routes, policy, proxy config).
import { setTimeout as sleep } from 'node:timers/promises';
import type { ManualClock } from '../spiffe/clock.js';

/**
 * Steps the manual clock one poll at a time until `done` holds; the watch's file I/O completes in
 * real time between steps. Throws after 100 polls.
 */
export async function untilPolled(clock: ManualClock, pollMs: number, done: () => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (done()) return;
    await clock.advance(pollMs);
    await sleep(10);
  }
  throw new Error('condition not reached');
}
