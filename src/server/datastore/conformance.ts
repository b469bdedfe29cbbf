// The DataStore conformance suite: every engine (SQLite now, PostgreSQL later) runs these same
// vitest blocks from a factory, so the contract in types.ts is enforced once, by behaviour
// ([SPIRE] sqltest.Run). Tests build data so that a plausible wrong implementation fails, and they
// assert error codes, never message text. Engine-specific checks live beside each engine.
import { afterEach, beforeEach, describe } from 'vitest';
import { describeAttestationConformance } from './conformance/attestations.js';
import { describeEntryConformance } from './conformance/entries.js';
import { describeEntryListingConformance } from './conformance/entry-listing.js';
import { describeResourceConformance } from './conformance/resources.js';
import type { ConformanceContext, ConformanceHarness } from './conformance/support.js';
import type { DataStore } from './types.js';

export type { ConformanceHarness } from './conformance/support.js';

/** Registers the suite; `factory` opens a store on a new, empty database for every test. */
export function describeDataStoreConformance(name: string, factory: () => Promise<ConformanceHarness>): void {
  describe(`DataStore conformance: ${name}`, () => {
    let harness: ConformanceHarness | undefined;
    let store: DataStore | undefined;
    const ctx: ConformanceContext = {
      get harness() {
        if (!harness) throw new Error('conformance: no harness outside a test');
        return harness;
      },
      get store() {
        if (!store) throw new Error('conformance: no store outside a test');
        return store;
      },
    };

    beforeEach(async () => {
      harness = await factory();
      store = harness.store;
    });

    afterEach(async () => {
      await harness?.cleanup();
      harness = undefined;
      store = undefined;
    });

    describeEntryConformance(ctx);
    describeEntryListingConformance(ctx);
    describeResourceConformance(ctx);
    describeAttestationConformance(ctx);
  });
}
