// Keeps V8's young generation at its initial size in the sidecar (1 MB per semi-space on Node 20)
// instead of letting it grow to 16 MB per semi-space under load: grown, the three spaces stay
// resident after the load is gone (V8 shrinks them only after a full GC, which an idle sidecar
// rarely has), about 30 MB of the sidecar's RSS. Measured on the h1 pair (docs/proxy-guide.md,
// "Memory"): 1 MB costs no more CPU per request than 16 MB, saturated or at 1,000 req/s.
// It must run before the proxy's modules load (they grow the young generation while loading), and
// in-process: every launcher runs bin/sigil-proxy with node, and Node 20 cannot re-exec itself.
// `--max-semi-space-size` set after start does not resize the heap (V8 reads it when the heap is
// made); the growth factor is read at each growth, so pinning it to 1 holds the size where it is.
import { setFlagsFromString } from 'node:v8';

/** V8 flags that size the young generation: an operator who sets one chooses for us. */
const YOUNG_GENERATION_FLAG =
  /--(?:(?:max|min)[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor|max[-_]heap[-_]size)(?:=|\s|$)/;

export interface NodeFlags {
  /** process.execArgv: flags given to node before the script. */
  readonly execArgv: readonly string[];
  /** $NODE_OPTIONS, as the operator set it. */
  readonly nodeOptions: string | undefined;
}

/**
 * Pins the young generation at V8's initial size unless the operator sized it (NODE_OPTIONS or node's
 * own flags, e.g. `--max-semi-space-size=16`). Returns whether it did.
 */
export function capYoungGeneration(
  flags: NodeFlags,
  setFlags: (flag: string) => void = setFlagsFromString,
): boolean {
  const given = [...flags.execArgv, flags.nodeOptions ?? ''];
  if (given.some((flag) => YOUNG_GENERATION_FLAG.test(flag))) return false;
  setFlags('--semi-space-growth-factor=1');
  return true;
}
