// Protobuf wire encoding of the SpiffeWorkloadAPI messages a client sends and receives, written out
// by hand for the few messages of proto/spiffe/workload/workload.proto. The client used to get them
// from @grpc/proto-loader, which brings protobufjs and a parsed copy of the proto into every process
// that only wants its SVID: about 5 MB of resident memory in each sidecar. Decoded values have the
// shapes proto-loader gives with the options in workload-proto.ts (keepCase, defaults, oneofs,
// enums as String), so the agent's server, which keeps proto-loader, and this codec agree on every
// field; workload-codec.test.ts checks both directions against proto-loader.
import { SigilError } from '../spiffe/errors.js';
import {
  eachField,
  FIXED64,
  LENGTH_DELIMITED,
  type MalformedError,
  ProtobufReader,
  VARINT,
  wireTypeName,
} from './protobuf-reader.js';
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

/** Struct claims nest; a hostile message must not exhaust the stack. */
const MAX_DEPTH = 64;

/** A response that does not parse: the agent (or whatever answered) is not speaking the Workload API. */
const responseMalformed: MalformedError = (rule) =>
  new SigilError('ERR_UNAVAILABLE', `workload api: malformed protobuf message: ${rule}`, {
    reason: 'malformed-message',
  });

const responseReader = (buf: Buffer) => new ProtobufReader(buf, responseMalformed);

/** One map<string, V> entry: key = 1, value = 2; both default when absent. */
function mapEntry<V>(reader: ProtobufReader, value: (r: ProtobufReader) => V, fallback: V): [string, V] {
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
function readBytesEntry(reader: ProtobufReader, target: Record<string, Buffer>): void {
  const [key, value] = mapEntry(reader.sub(), (r) => r.bytes(), EMPTY);
  defineEntry(target, key, value);
}

function decodeX509Svid(reader: ProtobufReader): X509SvidMessage {
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
  const reader = responseReader(buf);
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
  const reader = responseReader(buf);
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
  const reader = responseReader(buf);
  const message: JwtBundlesResponseMessage = { bundles: {} };
  eachField(reader, (n, wt) => {
    if (n !== 1 || wt !== LENGTH_DELIMITED) return false;
    readBytesEntry(reader, message.bundles);
    return true;
  });
  return message;
}

export function decodeJwtSvidResponseMessage(buf: Buffer): JwtSvidResponseMessage {
  const reader = responseReader(buf);
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
  const reader = responseReader(buf);
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
function decodeStruct(reader: ProtobufReader, depth: number): StructMessage {
  if (depth > MAX_DEPTH) throw reader.malformed('Struct nested too deeply');
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
function decodeValue(reader: ProtobufReader, depth: number): ValueMessage {
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

/**
 * The request messages as the agent's server reads them. Every field of every Workload API request
 * is a string, so one table per message says which; proto-loader reads valid messages the same way
 * (workload-codec.test.ts), but unlike it we refuse what does not parse: a known field with another
 * wire type, invalid UTF-8, a truncated field at the end. Errors are ERR_INPUT_INVALID naming the
 * message and the problem.
 */
interface StringField {
  readonly name: string;
  readonly repeated?: boolean;
}

const REQUEST_FIELDS = {
  X509SVIDRequest: {},
  X509BundlesRequest: {},
  JWTBundlesRequest: {},
  WITBundlesRequest: {},
  JWTSVIDRequest: { 1: { name: 'audience', repeated: true }, 2: { name: 'spiffe_id' } },
  ValidateJWTSVIDRequest: { 1: { name: 'audience' }, 2: { name: 'svid' } },
  WITSVIDRequest: { 1: { name: 'spiffe_id' } },
} as const satisfies Record<string, Record<number, StringField>>;

export type WorkloadRequestName = keyof typeof REQUEST_FIELDS;

/** Field name → value, with proto3 defaults ('' and []) for absent fields, as proto-loader gives. */
export function decodeWorkloadRequest(
  name: WorkloadRequestName,
  buf: Buffer,
): Record<string, string | string[]> {
  const fields: Readonly<Record<number, StringField>> = REQUEST_FIELDS[name];
  const malformed: MalformedError = (rule) =>
    new SigilError('ERR_INPUT_INVALID', `malformed ${name}: ${rule}`, { reason: 'malformed-request' });
  const message: Record<string, string | string[]> = {};
  for (const { name: key, repeated } of Object.values(fields)) message[key] = repeated ? [] : '';
  const reader = new ProtobufReader(buf, malformed);
  eachField(reader, (n, wt) => {
    const field = fields[n];
    if (field === undefined) return false;
    if (wt !== LENGTH_DELIMITED) {
      throw malformed(
        `field ${n} (${field.name}) has wire type ${wireTypeName(wt)}, expected length-delimited`,
      );
    }
    const value = reader.string();
    // A singular field seen twice: the last value wins, as in every protobuf runtime.
    if (field.repeated) (message[field.name] as string[]).push(value);
    else message[field.name] = value;
    return true;
  });
  return message;
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
