// A small DER toolkit: builders for the handful of ASN.1 types X.509 and PKCS#10 use, a reader that
// walks TLVs without copying, and the splitter for the Workload API's "concatenated DER" lists.
// It deliberately knows no schemas: callers (x509-svid.ts) own the certificate layout. Only definite,
// minimal lengths and single-byte tags are accepted, which is all DER certificates need.
import { SigilError } from './errors.js';

/** Universal and context tags used by X.509, as the full identifier octet. */
export const DerTag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** RFC 5280 §4.1.2.5: dates through 2049 are UTCTime, from 2050 on GeneralizedTime. */
const FIRST_GENERALIZED_TIME_MS = Date.UTC(2050, 0, 1);
/** UTCTime has a two-digit year; 1950 is the earliest date it can express under RFC 5280. */
const FIRST_UTC_TIME_MS = Date.UTC(1950, 0, 1);
/** No certificate, CSR or bundle we handle comes near 16 MiB; longer lengths are garbage, not data. */
const MAX_LENGTH_OCTETS = 4;

// ---------------------------------------------------------------------------------------------
// Builders

/** The DER length octets for `length` (short form below 128, else minimal long form). */
export function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  if (length < 0x10000) return Buffer.from([0x82, length >> 8, length & 0xff]);
  if (length < 0x1000000) return Buffer.from([0x83, length >> 16, (length >> 8) & 0xff, length & 0xff]);
  return Buffer.from([0x84, length >>> 24, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff]);
}

/** One TLV: `tag` (a full identifier octet) around the concatenation of `contents`. */
export function derTlv(tag: number, ...contents: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const c of contents) length += c.length;
  // Header written in place rather than via derLength: this runs ~20 times per minted leaf.
  const lengthOctets =
    length < 0x80 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : length < 0x1000000 ? 3 : 4;
  const out = Buffer.allocUnsafe(2 + lengthOctets + length);
  out[0] = tag;
  if (lengthOctets === 0) {
    out[1] = length;
  } else {
    out[1] = 0x80 | lengthOctets;
    out.writeUIntBE(length, 2, lengthOctets);
  }
  let at = 2 + lengthOctets;
  for (const c of contents) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export function derSequence(...items: readonly Uint8Array[]): Buffer {
  return derTlv(DerTag.SEQUENCE, ...items);
}

/** A SET OF; callers pass elements already in DER order (X.509 names use one element per SET). */
export function derSet(...items: readonly Uint8Array[]): Buffer {
  return derTlv(DerTag.SET, ...items);
}

/**
 * A non-negative INTEGER. A Buffer is read as an unsigned big-endian magnitude: leading zeros are
 * stripped and a 0x00 is prepended when the top bit is set, so the value never reads as negative.
 */
export function derInteger(value: number | bigint | Uint8Array): Buffer {
  let magnitude: Uint8Array;
  if (typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new SigilError('ERR_DER_INVALID', `der: integer ${value} is not a safe integer`);
    }
    let n = BigInt(value);
    if (n < 0n) throw new SigilError('ERR_DER_INVALID', `der: negative integer ${value} is not supported`);
    const bytes: number[] = [];
    do {
      bytes.unshift(Number(n & 0xffn));
      n >>= 8n;
    } while (n > 0n);
    magnitude = Uint8Array.from(bytes);
  } else {
    magnitude = value;
  }
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.length === 0 ? Uint8Array.of(0) : magnitude.subarray(start);
  return trimmed[0]! & 0x80
    ? derTlv(DerTag.INTEGER, Uint8Array.of(0), trimmed)
    : derTlv(DerTag.INTEGER, trimmed);
}

export function derBoolean(value: boolean): Buffer {
  return Buffer.from([DerTag.BOOLEAN, 1, value ? 0xff : 0x00]);
}

export function derNull(): Buffer {
  return Buffer.from([DerTag.NULL, 0]);
}

/** An OBJECT IDENTIFIER from dotted form, e.g. `2.5.29.17`. */
export function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((arc) => {
    if (!/^(0|[1-9][0-9]*)$/.test(arc)) {
      throw new SigilError('ERR_DER_INVALID', `der: OID "${dotted}" has a non-numeric arc "${arc}"`);
    }
    return BigInt(arc);
  });
  if (arcs.length < 2 || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n)) {
    throw new SigilError('ERR_DER_INVALID', `der: "${dotted}" is not a valid OID`);
  }
  const body: number[] = [];
  const pushBase128 = (v: bigint) => {
    const groups: number[] = [Number(v & 0x7fn)];
    for (let rest = v >> 7n; rest > 0n; rest >>= 7n) groups.unshift(Number(rest & 0x7fn) | 0x80);
    body.push(...groups);
  };
  pushBase128(arcs[0]! * 40n + arcs[1]!);
  for (const arc of arcs.slice(2)) pushBase128(arc);
  return derTlv(DerTag.OID, Uint8Array.from(body));
}

/** A BIT STRING holding whole octets (0 unused bits) or, for named-bit lists, `unusedBits` trailing bits. */
export function derBitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (unusedBits < 0 || unusedBits > 7 || (unusedBits > 0 && bytes.length === 0)) {
    throw new SigilError('ERR_DER_INVALID', `der: ${unusedBits} unused bits is invalid for a bit string`);
  }
  return derTlv(DerTag.BIT_STRING, Uint8Array.of(unusedBits), bytes);
}

export function derOctetString(bytes: Uint8Array): Buffer {
  return derTlv(DerTag.OCTET_STRING, bytes);
}

export function derUtf8String(text: string): Buffer {
  return derTlv(DerTag.UTF8_STRING, Buffer.from(text, 'utf8'));
}

/** A PrintableString; throws when `text` has characters outside its alphabet (X.680 §41.4). */
export function derPrintableString(text: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) {
    throw new SigilError('ERR_DER_INVALID', `der: "${text}" has characters a PrintableString cannot hold`);
  }
  return derTlv(DerTag.PRINTABLE_STRING, Buffer.from(text, 'latin1'));
}

/**
 * An X.509 Time for `ms` (truncated to whole seconds, which is all X.509 carries): UTCTime
 * `YYMMDDHHMMSSZ` through 2049, GeneralizedTime `YYYYMMDDHHMMSSZ` from 2050 (RFC 5280 §4.1.2.5).
 */
export function derTime(ms: number): Buffer {
  if (!Number.isFinite(ms) || ms < FIRST_UTC_TIME_MS || ms >= Date.UTC(10000, 0, 1)) {
    throw new SigilError(
      'ERR_DER_INVALID',
      `der: time ${ms} ms is outside what X.509 can express (1950-9999)`,
    );
  }
  const d = new Date(ms);
  const rest =
    pad2(d.getUTCMonth() + 1) +
    pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) +
    pad2(d.getUTCMinutes()) +
    pad2(d.getUTCSeconds()) +
    'Z';
  const year = d.getUTCFullYear();
  if (ms < FIRST_GENERALIZED_TIME_MS) {
    return derTlv(DerTag.UTC_TIME, Buffer.from(pad2(year % 100) + rest, 'latin1'));
  }
  return derTlv(DerTag.GENERALIZED_TIME, Buffer.from(String(year).padStart(4, '0') + rest, 'latin1'));
}

/**
 * A context-specific tag `[n]`. `constructed` (EXPLICIT tagging, or IMPLICIT over a SEQUENCE) wraps
 * TLVs, e.g. the certificate's `[3]` extensions; primitive IMPLICIT tagging wraps raw content, e.g.
 * a GeneralName `[6]` URI (0x86).
 */
export function derContext(n: number, constructed: boolean, ...contents: readonly Uint8Array[]): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 30) {
    throw new SigilError('ERR_DER_INVALID', `der: context tag [${n}] is out of range (0-30)`);
  }
  return derTlv(0x80 | (constructed ? 0x20 : 0) | n, ...contents);
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

// ---------------------------------------------------------------------------------------------
// Reader

/** One TLV located in a buffer. Offsets are absolute; the value is `buf.subarray(valueStart, end)`. */
export interface DerTlv {
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

/**
 * Reads the TLV at `offset`, not past `limit` (default: the end of `buf`). Throws ERR_DER_INVALID
 * for a truncated element, a multi-byte tag, an indefinite or non-minimal length.
 */
export function readTlv(buf: Uint8Array, offset = 0, limit = buf.length): DerTlv {
  if (offset >= limit) throw derError(offset, 'expected an element but the data ended');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f)
    throw derError(offset, `tag 0x${hex2(tag)} uses the multi-byte form, not supported`);
  if (offset + 1 >= limit) throw derError(offset, 'element is truncated before its length');
  const first = buf[offset + 1]!;
  let length: number;
  let valueStart: number;
  if (first < 0x80) {
    length = first;
    valueStart = offset + 2;
  } else {
    const octets = first & 0x7f;
    if (octets === 0) throw derError(offset, 'indefinite length is not allowed in DER');
    if (octets > MAX_LENGTH_OCTETS)
      throw derError(offset, `length uses ${octets} octets (at most 4 supported)`);
    if (offset + 2 + octets > limit) throw derError(offset, 'element is truncated inside its length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + buf[offset + 2 + i]!;
    if (buf[offset + 2]! === 0 || length < 0x80) throw derError(offset, 'length is not minimally encoded');
    valueStart = offset + 2 + octets;
  }
  const end = valueStart + length;
  if (end > limit) {
    throw derError(offset, `element of ${length} bytes is truncated (only ${limit - valueStart} available)`);
  }
  return { tag, start: offset, valueStart, end };
}

/** The TLVs inside a constructed element (SEQUENCE, SET, [n] constructed), in order. */
export function readChildren(buf: Uint8Array, parent: DerTlv): DerTlv[] {
  if ((parent.tag & 0x20) === 0) {
    throw derError(parent.start, `tag 0x${hex2(parent.tag)} is primitive, it has no children`);
  }
  const children: DerTlv[] = [];
  for (let at = parent.valueStart; at < parent.end; ) {
    const child = readTlv(buf, at, parent.end);
    children.push(child);
    at = child.end;
  }
  return children;
}

/** Reads the element at `offset` and checks its tag, naming `what` in the error. */
export function expectTlv(
  buf: Uint8Array,
  offset: number,
  tag: number,
  what: string,
  limit = buf.length,
): DerTlv {
  const tlv = readTlv(buf, offset, limit);
  if (tlv.tag !== tag) {
    throw derError(offset, `expected ${what} (tag 0x${hex2(tag)}), found tag 0x${hex2(tlv.tag)}`);
  }
  return tlv;
}

/** The value bytes of `tlv` (a view, not a copy). */
export function tlvValue(buf: Uint8Array, tlv: DerTlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.valueStart, tlv.end - tlv.valueStart);
}

/** The whole encoding of `tlv`, header included (a view, not a copy). */
export function tlvBytes(buf: Uint8Array, tlv: DerTlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.start, tlv.end - tlv.start);
}

/** Dotted form of an OBJECT IDENTIFIER's value. */
export function readOid(buf: Uint8Array, tlv: DerTlv): string {
  if (tlv.tag !== DerTag.OID) throw derError(tlv.start, `expected an OID, found tag 0x${hex2(tlv.tag)}`);
  if (tlv.end === tlv.valueStart) throw derError(tlv.start, 'OID is empty');
  const arcs: bigint[] = [];
  let value = 0n;
  let fresh = true;
  for (let i = tlv.valueStart; i < tlv.end; i++) {
    const b = buf[i]!;
    if (fresh && b === 0x80) throw derError(tlv.start, 'OID arc has a non-minimal encoding');
    value = (value << 7n) | BigInt(b & 0x7f);
    fresh = (b & 0x80) === 0;
    if (fresh) {
      arcs.push(value);
      value = 0n;
    }
  }
  if (!fresh) throw derError(tlv.start, 'OID ends inside an arc');
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/** An INTEGER's value as its minimal unsigned magnitude; throws for negative values. */
export function readUnsignedInteger(buf: Uint8Array, tlv: DerTlv): Buffer {
  if (tlv.tag !== DerTag.INTEGER)
    throw derError(tlv.start, `expected an INTEGER, found tag 0x${hex2(tlv.tag)}`);
  const value = tlvValue(buf, tlv);
  if (value.length === 0) throw derError(tlv.start, 'INTEGER is empty');
  if (value[0]! & 0x80) throw derError(tlv.start, 'INTEGER is negative');
  if (value.length > 1 && value[0] === 0 && (value[1]! & 0x80) === 0) {
    throw derError(tlv.start, 'INTEGER is not minimally encoded');
  }
  return value.length > 1 && value[0] === 0 ? value.subarray(1) : value;
}

/** A small non-negative INTEGER (versions, path lengths) as a number. */
export function readSmallInteger(buf: Uint8Array, tlv: DerTlv): number {
  const magnitude = readUnsignedInteger(buf, tlv);
  if (magnitude.length > 6) throw derError(tlv.start, 'INTEGER is too large');
  return magnitude.readUIntBE(0, magnitude.length);
}

/** A UTCTime or GeneralizedTime (RFC 5280 form: seconds, `Z`) as epoch milliseconds. */
export function readTime(buf: Uint8Array, tlv: DerTlv): number {
  const text = Buffer.from(buf.buffer, buf.byteOffset + tlv.valueStart, tlv.end - tlv.valueStart).toString(
    'latin1',
  );
  let match: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === DerTag.UTC_TIME) {
    match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!match) throw derError(tlv.start, `UTCTime "${text}" is not in YYMMDDHHMMSSZ form`);
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tlv.tag === DerTag.GENERALIZED_TIME) {
    match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!match) throw derError(tlv.start, `GeneralizedTime "${text}" is not in YYYYMMDDHHMMSSZ form`);
    year = Number(match[1]);
  } else {
    throw derError(tlv.start, `expected a time, found tag 0x${hex2(tlv.tag)}`);
  }
  const [mo, d, h, mi, s] = [2, 3, 4, 5, 6].map((i) => Number(match![i]));
  const ms = Date.UTC(year, mo! - 1, d, h, mi, s);
  const check = new Date(ms);
  if (check.getUTCMonth() !== mo! - 1 || check.getUTCDate() !== d || h! > 23 || mi! > 59 || s! > 59) {
    throw derError(tlv.start, `time "${text}" is not a real date`);
  }
  return ms;
}

/**
 * Splits "concatenated DER" (Workload API `x509_svid` / `bundle` fields: certificates back to back,
 * no PEM, no length prefixes) into one Buffer per certificate, each a copy so the caller may keep it
 * without pinning the whole message. Empty input gives an empty list; the caller decides whether
 * it needs at least one.
 */
export function splitConcatenatedDer(buf: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length; ) {
    // Tag first: PEM or other text passed by mistake should say so, not report a bogus length.
    if (buf[at] !== DerTag.SEQUENCE) {
      throw derError(
        at,
        `concatenated DER: element ${out.length + 1} is not a SEQUENCE (tag 0x${hex2(buf[at]!)})`,
      );
    }
    const tlv = readTlv(buf, at);
    out.push(Buffer.from(buf.subarray(tlv.start, tlv.end)));
    at = tlv.end;
  }
  return out;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function derError(offset: number, rule: string): SigilError {
  return new SigilError('ERR_DER_INVALID', `der: at offset ${offset}: ${rule}`, { reason: 'malformed' });
}
