// Protobuf wire encoding of the SpiffeWorkloadAPI messages a client sends and receives, written out
// by hand for the few messages of proto/spiffe/workload/workload.proto. The client used to get them
// from @grpc/proto-loader, which brings protobufjs and a parsed copy of the proto into every process
// that only wants its SVID: about 5 MB of resident memory in each sidecar. Decoded values have the
// shapes proto-loader gives with the options in workload-proto.ts (keepCase, defaults, oneofs,
// enums as String), so the agent's server, which keeps proto-loader, and this codec agree on every
// field; workload-codec.test.ts checks both directions against proto-loader.
import { SigilError } from '../spiffe/errors.js';
import {
  defineEntry,
  type JwtBundlesResponseMessage,
  type JwtSvidMessage,
  type JwtSvidRequestMessage,
  type JwtSvidResponseMessage,
  type StructMessage,
  type ValidateJwtSvidRequestMessage,
  type ValidateJwtSvidResponseMessage,
  type ValueMessage,
  type X509BundlesResponseMessage,
  type X509SvidMessage,
  type X509SvidResponseMessage,
} from './workload-proto.js';

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;
/** Struct claims nest; a hostile message must not exhaust the stack. */
const MAX_DEPTH = 64;

class Reader {
  pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed('truncated varint');
      const byte = this.buf[this.pos++]!;
      // Multiplication, not shifts: lengths and tags must not wrap at 32 bits.
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw malformed('varint longer than 10 bytes');
  }

  /** A length-delimited field's [start, end) within the buffer. */
  span(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) throw malformed('length past the end of the message');
    this.pos = start + length;
    return [start, this.pos];
  }

  bytes(): Buffer {
    const [start, end] = this.span();
    return this.buf.subarray(start, end);
  }

  string(): string {
    const [start, end] = this.span();
    return this.buf.toString('utf8', start, end);
  }

  double(): number {
    if (this.end - this.pos < 8) throw malformed('truncated double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  sub(): Reader {
    const [start, end] = this.span();
    return new Reader(this.buf, start, end);
  }

  /** Skips a field we do not know, as proto3 requires (newer agents may add fields). */
  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.advance(8);
        return;
      case LENGTH_DELIMITED:
        this.span();
        return;
      case FIXED32:
        this.advance(4);
        return;
      default:
        throw malformed(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.end - this.pos < n) throw malformed('truncated fixed-width field');
    this.pos += n;
  }
}

/** Calls `field` for each field of the message; it returns false for fields it does not read. */
function eachField(reader: Reader, field: (fieldNumber: number, wireType: number) => boolean): void {
  while (!reader.done) {
    const tag = reader.varint();
    const fieldNumber = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (fieldNumber === 0) throw malformed('field number 0');
    if (!field(fieldNumber, wireType)) reader.skip(wireType);
  }
}

/** One map<string, V> entry: key = 1, value = 2; both default when absent. */
function mapEntry<V>(reader: Reader, value: (r: Reader) => V, fallback: V): [string, V] {
  let key = '';
  let entryValue = fallback;
  eachField(reader, (n, wt) => {
    if (n === 1 && wt === LENGTH_DELIMITED) key = reader.string();
    else if (n === 2 && wt === LENGTH_DELIMITED) entryValue = value(reader);
    else return false;
    return true;
  });
  return [key, entryValue];
}

const EMPTY = Buffer.alloc(0);

/** One map<string, bytes> entry (bundles by trust domain) into `target`. */
function readBytesEntry(reader: Reader, target: Record<string, Buffer>): void {
  const [key, value] = mapEntry(reader.sub(), (r) => r.bytes(), EMPTY);
  defineEntry(target, key, value);
}

function decodeX509Svid(reader: Reader): X509SvidMessage {
  const svid: X509SvidMessage = {
    spiffe_id: '',
    x509_svid: EMPTY,
    x509_svid_key: EMPTY,
    bundle: EMPTY,
    hint: '',
  };
  eachField(reader, (n, wt) => {
    if (wt !== LENGTH_DELIMITED) return false;
    if (n === 1) svid.spiffe_id = reader.string();
    else if (n === 2) svid.x509_svid = reader.bytes();
    else if (n === 3) svid.x509_svid_key = reader.bytes();
    else if (n === 4) svid.bundle = reader.bytes();
    else if (n === 5) svid.hint = reader.string();
    else return false;
    return true;
  });
  return svid;
}

export function decodeX509SvidResponseMessage(buf: Buffer): X509SvidResponseMessage {
  const reader = new Reader(buf);
  const message: X509SvidResponseMessage = { svids: [], crl: [], federated_bundles: {} };
  eachField(reader, (n, wt) => {
    if (wt !== LENGTH_DELIMITED) return false;
    if (n === 1) message.svids.push(decodeX509Svid(reader.sub()));
    else if (n === 2) message.crl.push(reader.bytes());
    else if (n === 3) readBytesEntry(reader, message.federated_bundles);
    else return false;
    return true;
  });
  return message;
}

export function decodeX509BundlesResponseMessage(buf: Buffer): X509BundlesResponseMessage {
  const reader = new Reader(buf);
  const message: X509BundlesResponseMessage = { crl: [], bundles: {} };
  eachField(reader, (n, wt) => {
    if (wt !== LENGTH_DELIMITED) return false;
    if (n === 1) message.crl.push(reader.bytes());
    else if (n === 2) readBytesEntry(reader, message.bundles);
    else return false;
    return true;
  });
  return message;
}

export function decodeJwtBundlesResponseMessage(buf: Buffer): JwtBundlesResponseMessage {
  const reader = new Reader(buf);
  const message: JwtBundlesResponseMessage = { bundles: {} };
  eachField(reader, (n, wt) => {
    if (n !== 1 || wt !== LENGTH_DELIMITED) return false;
    readBytesEntry(reader, message.bundles);
    return true;
  });
  return message;
}

export function decodeJwtSvidResponseMessage(buf: Buffer): JwtSvidResponseMessage {
  const reader = new Reader(buf);
  const message: JwtSvidResponseMessage = { svids: [] };
  eachField(reader, (n, wt) => {
    if (n !== 1 || wt !== LENGTH_DELIMITED) return false;
    const sub = reader.sub();
    const svid: JwtSvidMessage = { spiffe_id: '', svid: '', hint: '' };
    eachField(sub, (m, mwt) => {
      if (mwt !== LENGTH_DELIMITED) return false;
      if (m === 1) svid.spiffe_id = sub.string();
      else if (m === 2) svid.svid = sub.string();
      else if (m === 3) svid.hint = sub.string();
      else return false;
      return true;
    });
    message.svids.push(svid);
    return true;
  });
  return message;
}

export function decodeValidateJwtSvidResponseMessage(buf: Buffer): ValidateJwtSvidResponseMessage {
  const reader = new Reader(buf);
  const message: ValidateJwtSvidResponseMessage = { spiffe_id: '', claims: null };
  eachField(reader, (n, wt) => {
    if (wt !== LENGTH_DELIMITED) return false;
    if (n === 1) message.spiffe_id = reader.string();
    else if (n === 2) message.claims = decodeStruct(reader.sub(), 0);
    else return false;
    return true;
  });
  return message;
}

/** google.protobuf.Struct: map<string, Value> fields = 1. */
function decodeStruct(reader: Reader, depth: number): StructMessage {
  if (depth > MAX_DEPTH) throw malformed('Struct nested too deeply');
  const fields: Record<string, ValueMessage> = {};
  eachField(reader, (n, wt) => {
    if (n !== 1 || wt !== LENGTH_DELIMITED) return false;
    const [key, value] = mapEntry(reader.sub(), (r) => decodeValue(r.sub(), depth + 1), {});
    defineEntry(fields, key, value);
    return true;
  });
  return { fields };
}

/** google.protobuf.Value: a oneof; the last member on the wire wins, as in every protobuf runtime. */
function decodeValue(reader: Reader, depth: number): ValueMessage {
  let value: ValueMessage = {};
  eachField(reader, (n, wt) => {
    if (n === 1 && wt === VARINT) {
      reader.varint();
      value = { kind: 'nullValue', nullValue: 'NULL_VALUE' };
    } else if (n === 2 && wt === FIXED64) value = { kind: 'numberValue', numberValue: reader.double() };
    else if (n === 3 && wt === LENGTH_DELIMITED)
      value = { kind: 'stringValue', stringValue: reader.string() };
    else if (n === 4 && wt === VARINT) value = { kind: 'boolValue', boolValue: reader.varint() !== 0 };
    else if (n === 5 && wt === LENGTH_DELIMITED)
      value = { kind: 'structValue', structValue: decodeStruct(reader.sub(), depth + 1) };
    else if (n === 6 && wt === LENGTH_DELIMITED) {
      const list = reader.sub();
      const values: ValueMessage[] = [];
      eachField(list, (m, mwt) => {
        if (m !== 1 || mwt !== LENGTH_DELIMITED) return false;
        values.push(decodeValue(list.sub(), depth + 1));
        return true;
      });
      value = { kind: 'listValue', listValue: { values } };
    } else return false;
    return true;
  });
  return value;
}

// ---- requests ----------------------------------------------------------------------------------

/** X509SVIDRequest, X509BundlesRequest and JWTBundlesRequest have no fields. */
export const EMPTY_REQUEST: Buffer = EMPTY;

export function encodeJwtSvidRequest(request: JwtSvidRequestMessage): Buffer {
  const parts: Buffer[] = [];
  for (const audience of request.audience) parts.push(stringField(1, audience, true));
  parts.push(stringField(2, request.spiffe_id));
  return Buffer.concat(parts);
}

export function encodeValidateJwtSvidRequest(request: ValidateJwtSvidRequestMessage): Buffer {
  return Buffer.concat([stringField(1, request.audience), stringField(2, request.svid)]);
}

/** A string field; proto3 leaves empty singular strings off the wire, repeated ones stay. */
function stringField(fieldNumber: number, value: string, repeated = false): Buffer {
  if (value === '' && !repeated) return EMPTY;
  const data = Buffer.from(value, 'utf8');
  return Buffer.concat([varint(fieldNumber * 8 + LENGTH_DELIMITED), varint(data.length), data]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function malformed(rule: string): SigilError {
  return new SigilError('ERR_UNAVAILABLE', `workload api: malformed protobuf message: ${rule}`, {
    reason: 'malformed-message',
  });
}
