// The access log: one JSON line per sampled request, off unless `access_log` is configured. Lines
// go to an asynchronous writer with a bounded buffer (pino's SonicBoom): a slow disk or a full
// stdout pipe drops lines (counted) rather than holding requests or growing memory. Every value
// goes through JSON.stringify, so a path or ID sent by a caller cannot forge a line.

/** One request, as logged. */
export interface AccessLogLine {
  readonly time: string;
  readonly listener: string;
  readonly direction: 'inbound' | 'outbound';
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly duration_ms: number;
  readonly source_id: string | null;
  readonly destination_id: string;
  readonly trace_id: string | null;
  readonly route: string | null;
  readonly attempts: number;
  /** The proxy's error name (x-sigil-error) when the upstream gave no response. */
  readonly error: string | null;
}

/** Where lines are written: SonicBoom, which drops (and reports) what would overflow its buffer. */
export interface LineWriter {
  write(line: string): unknown;
}

export class AccessLog {
  constructor(
    private readonly writer: LineWriter,
    /** Share of requests logged, 0 to 1. */
    private readonly sampleRatio: number,
    private readonly random: () => number,
  ) {}

  /** Decides, once per request, whether it is logged. */
  isSampled(): boolean {
    return this.sampleRatio >= 1 || (this.sampleRatio > 0 && this.random() < this.sampleRatio);
  }

  write(line: AccessLogLine): void {
    this.writer.write(`${JSON.stringify(line)}\n`);
  }
}
