// Caps V8's young generation in the sidecar at 4 MB per semi-space instead of V8's 16 MB: grown
// to 16 MB under load, the new space stays resident once the load is gone (V8 shrinks it only
// after a GC, which an idle sidecar does not have), ~25 MB of each sidecar's RSS. Not smaller:
// at 1 MB the h1 pair spent ~1.5x the CPU per request saturated (objects of in-flight requests
// survive the more frequent scavenges and are promoted to the old generation); docs/proxy-guide.md.
// It must work in-process, however the sidecar is started: every launcher runs bin/sigil-proxy
// with node, Node 20 cannot re-exec itself, and `--max-semi-space-size` set after start does not
// resize the heap (V8 reads it once, when the heap is made). V8 does read the growth factor at each
// growth, so after every GC the factor is set to 1 (no growth) at the cap and back to V8's 2 below
// it (V8 may shrink the young generation after a GC, and must be able to grow it back).
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** The cap: per semi-space, in bytes (the new space holds two). */
export const MAX_SEMI_SPACE_BYTES = 4 * 1024 * 1024;
/** V8's own growth factor (--semi-space-growth-factor), restored below the cap. */
const V8_GROWTH_FACTOR = 2;

/** V8 flags that size the young generation: an operator who sets one chooses for us. */
const YOUNG_GENERATION_FLAG =
  /--(?:(?:max|min)[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor|max[-_]heap[-_]size)(?:=|\s|$)/;

export interface NodeFlags {
  /** process.execArgv: flags given to node before the script. */
  readonly execArgv: readonly string[];
  /** $NODE_OPTIONS, as the operator set it. */
  readonly nodeOptions: string | undefined;
}

/** What the cap needs from V8: the young generation's size, its growth factor, and GC events. */
export interface YoungGenerationControl {
  /** Both semi-spaces, in bytes. */
  newSpaceBytes(): number;
  setGrowthFactor(factor: number): void;
  /** Calls `listener` after garbage collections (possibly batched); returns a stop function. */
  afterGc(listener: () => void): () => void;
}

export const v8YoungGeneration: YoungGenerationControl = {
  newSpaceBytes: () =>
    getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0,
  setGrowthFactor: (factor) => setFlagsFromString(`--semi-space-growth-factor=${factor}`),
  afterGc: (listener) => {
    const observer = new PerformanceObserver(listener);
    observer.observe({ entryTypes: ['gc'] });
    return () => observer.disconnect();
  },
};

/**
 * Holds the young generation at `MAX_SEMI_SPACE_BYTES` per semi-space unless the operator sized it
 * (NODE_OPTIONS or node's own flags, e.g. `--max-semi-space-size=16`). Returns a stop function, or
 * null when the operator's flags decide.
 */
export function capYoungGeneration(
  flags: NodeFlags,
  heap: YoungGenerationControl = v8YoungGeneration,
): (() => void) | null {
  const given = [...flags.execArgv, flags.nodeOptions ?? ''];
  if (given.some((flag) => YOUNG_GENERATION_FLAG.test(flag))) return null;
  let factor = V8_GROWTH_FACTOR;
  const check = () => {
    // A GC may have grown the young generation to the cap, or shrunk it below.
    const wanted = heap.newSpaceBytes() >= 2 * MAX_SEMI_SPACE_BYTES ? 1 : V8_GROWTH_FACTOR;
    if (wanted === factor) return;
    heap.setGrowthFactor(wanted);
    factor = wanted;
  };
  check();
  return heap.afterGc(check);
}
