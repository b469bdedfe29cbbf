// A strict reader of the protobuf wire format, for the few Workload API messages we decode by hand
// (workload-codec.ts): the SDK reads responses with it, the agent's server reads requests with it.
// Strict where protobufjs is lax: a varint longer than 64 bits, a length past the end, a truncated
// fixed-width field, field number 0 or above 2^29-1, the deprecated group wire types (never used in
// proto3, and skipping them needs unbounded nesting) and invalid UTF-8 in a string field are all
// refused, each with the byte offset. Unknown fields of the other wire types are skipped, as proto3
// requires. Errors come from `malformed`, so each side picks its own code.
import { isUtf8 } from 'node:buffer';
import type { SigilError } from '../spiffe/errors.js';

export const VARINT = 0;
export const FIXED64 = 1;
export const LENGTH_DELIMITED = 2;
export const FIXED32 = 5;
const WIRE_TYPE_NAMES = ['varint', 'fixed64', 'length-delimited', 'start-group', 'end-group', 'fixed32'];
/** The largest field number protobuf allows (2^29 - 1). */
const MAX_FIELD_NUMBER = 536_870_911;

/** Builds the error for a broken rule; `rule` already names the offset. */
export type MalformedError = (rule: string) => SigilError;

export function wireTypeName(wireType: number): string {
  return WIRE_TYPE_NAMES[wireType] ?? `invalid (${wireType})`;
}

export class ProtobufReader {
  pos: number;

  constructor(
    private readonly buf: Buffer,
    readonly malformed: MalformedError,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    const at = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw this.malformed(`truncated varint at byte ${at}`);
      const byte = this.buf[this.pos++]!;
      // The tenth byte holds bit 63 only: anything more overflows 64 bits.
      if (i === 9 && byte > 1) break;
      // Multiplication, not shifts: lengths and tags must not wrap at 32 bits.
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw this.malformed(`varint at byte ${at} overflows 64 bits`);
  }

  /** A length-delimited field's [start, end) within the buffer. */
  span(): [number, number] {
    const at = this.pos;
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) {
      throw this.malformed(
        `length ${length} at byte ${at} runs past the end of the message (${this.end - start} bytes left)`,
      );
    }
    this.pos = start + length;
    return [start, this.pos];
  }

  bytes(): Buffer {
    const [start, end] = this.span();
    return this.buf.subarray(start, end);
  }

  /** A string field: UTF-8 is required by proto3, and a lenient decode would turn garbage into U+FFFD. */
  string(): string {
    const [start, end] = this.span();
    const bytes = this.buf.subarray(start, end);
    if (!isUtf8(bytes)) throw this.malformed(`string at byte ${start} is not valid UTF-8`);
    return bytes.toString('utf8');
  }

  double(): number {
    this.need(8, 'double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  sub(): ProtobufReader {
    const [start, end] = this.span();
    return new ProtobufReader(this.buf, this.malformed, start, end);
  }

  /** Skips a field we do not know, as proto3 requires (newer peers may add fields). */
  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.need(8, 'fixed64 field');
        this.pos += 8;
        return;
      case LENGTH_DELIMITED:
        this.span();
        return;
      case FIXED32:
        this.need(4, 'fixed32 field');
        this.pos += 4;
        return;
      default:
        throw this.malformed(`unsupported wire type ${wireTypeName(wireType)} before byte ${this.pos}`);
    }
  }

  private need(n: number, what: string): void {
    if (this.end - this.pos < n) throw this.malformed(`truncated ${what} at byte ${this.pos}`);
  }
}

/**
 * Calls `field` for each field of the message; it returns false for fields it does not read, which
 * are then skipped. A field is read or skipped whole, so bytes that do not form one (a tag with no
 * value, a cut-off varint) are refused: there is no trailing garbage a decoder could ignore.
 */
export function eachField(
  reader: ProtobufReader,
  field: (fieldNumber: number, wireType: number) => boolean,
): void {
  while (!reader.done) {
    const at = reader.pos;
    const tag = reader.varint();
    const fieldNumber = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (fieldNumber === 0) throw reader.malformed(`field number 0 at byte ${at}`);
    if (fieldNumber > MAX_FIELD_NUMBER) {
      throw reader.malformed(
        `field number ${fieldNumber} at byte ${at} is above the maximum ${MAX_FIELD_NUMBER}`,
      );
    }
    if (!field(fieldNumber, wireType)) reader.skip(wireType);
  }
}
