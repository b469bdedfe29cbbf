// Parent-based sampling: follow the caller's decision when it made one; otherwise (a new trace, or
// B3's "deferred") decide from the trace ID alone, exactly as OpenTelemetry's TraceIdRatioBased
// sampler does in JavaScript, so two sidecars, or a sidecar and an app using the OTel SDK, that
// see the same trace ID and ratio come to the same answer without talking to each other.

export class ParentBasedSampler {
  private readonly upperBound: number;

  /** `ratio`: share of new traces sampled, 0 to 1. */
  constructor(ratio: number) {
    // TraceIdRatioBased's bound: ratio 1 must admit 0xffffffff too.
    this.upperBound = ratio >= 1 ? 0x1_0000_0000 : Math.floor(Math.max(0, ratio) * 0xffffffff);
  }

  /** Whether to sample the trace `traceId` given the caller's decision (null: none). */
  isSampled(traceId: string, parentSampled: boolean | null): boolean {
    if (parentSampled !== null) return parentSampled;
    return traceIdBucket(traceId) < this.upperBound;
  }
}

/** TraceIdRatioBased's hash: the four 32-bit words of the trace ID XORed together. */
export function traceIdBucket(traceId: string): number {
  let accumulation = 0;
  for (let i = 0; i < 32; i += 8) {
    let word = 0;
    for (let j = i; j < i + 8; j++) {
      const c = traceId.charCodeAt(j);
      // '0'-'9' → 0-9, 'a'-'f' → 10-15 (IDs here are lower case, checked when parsed or made).
      word = (word << 4) | (c < 58 ? c - 48 : c - 87);
    }
    accumulation = (accumulation ^ word) >>> 0;
  }
  return accumulation;
}
