// The hand-written codec against proto-loader (protobufjs), which the agent's server encodes with:
// every response the server can send decodes to what proto-loader itself would read, and every
// request the client sends reads back, through proto-loader, as what was encoded.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSigilError } from '../spiffe/errors.js';
import {
  decodeJwtBundlesResponseMessage,
  decodeJwtSvidResponseMessage,
  decodeValidateJwtSvidResponseMessage,
  decodeWorkloadRequest,
  decodeX509BundlesResponseMessage,
  decodeX509SvidResponseMessage,
  encodeJwtSvidRequest,
  encodeValidateJwtSvidRequest,
} from './workload-codec.js';
import { fromStruct, toStruct, workloadServiceDefinition } from './workload-proto.js';

const def = workloadServiceDefinition();

/** A length-delimited field (lengths here stay under 2^14, so two varint bytes at most). */
function field(fieldNumber: number, data: Buffer): Buffer {
  const length = data.length < 0x80 ? [data.length] : [(data.length & 0x7f) | 0x80, data.length >> 7];
  return Buffer.concat([Buffer.from([(fieldNumber << 3) | 2, ...length]), data]);
}
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const text = fc.string({ unit: 'grapheme', maxLength: 24 });
// protobufjs assigns map keys, so a `__proto__` key is lost on its side; our side is tested below.
const key = text.filter((k) => k !== '__proto__');
const map = <T>(value: fc.Arbitrary<T>) => fc.dictionary(key, value, { maxKeys: 4, noNullPrototype: true });

describe('Workload API codec, against proto-loader', () => {
  it('decodes X509SVIDResponse as proto-loader does', () => {
    const svid = fc.record({
      spiffe_id: text,
      x509_svid: bytes,
      x509_svid_key: bytes,
      bundle: bytes,
      hint: text,
    });
    fc.assert(
      fc.property(
        fc.record({
          svids: fc.array(svid, { maxLength: 3 }),
          crl: fc.array(bytes, { maxLength: 2 }),
          federated_bundles: map(bytes),
        }),
        (message) => {
          const wire = def.FetchX509SVID.responseSerialize(message);
          expect(decodeX509SvidResponseMessage(wire)).toEqual(def.FetchX509SVID.responseDeserialize(wire));
        },
      ),
    );
  });

  it('decodes X509BundlesResponse, JWTBundlesResponse and JWTSVIDResponse as proto-loader does', () => {
    fc.assert(
      fc.property(
        fc.record({ crl: fc.array(bytes, { maxLength: 2 }), bundles: map(bytes) }),
        fc.record({ bundles: map(bytes) }),
        fc.record({
          svids: fc.array(fc.record({ spiffe_id: text, svid: text, hint: text }), { maxLength: 3 }),
        }),
        (x509Bundles, jwtBundles, jwtSvids) => {
          const a = def.FetchX509Bundles.responseSerialize(x509Bundles);
          expect(decodeX509BundlesResponseMessage(a)).toEqual(def.FetchX509Bundles.responseDeserialize(a));
          const b = def.FetchJWTBundles.responseSerialize(jwtBundles);
          expect(decodeJwtBundlesResponseMessage(b)).toEqual(def.FetchJWTBundles.responseDeserialize(b));
          const c = def.FetchJWTSVID.responseSerialize(jwtSvids);
          expect(decodeJwtSvidResponseMessage(c)).toEqual(def.FetchJWTSVID.responseDeserialize(c));
        },
      ),
    );
  });

  it('decodes ValidateJWTSVIDResponse claims (google.protobuf.Struct) to the same JSON', () => {
    const json = fc.jsonValue({ maxDepth: 4 });
    fc.assert(
      fc.property(text, map(json), fc.boolean(), (spiffeId, claims, withClaims) => {
        const wire = def.ValidateJWTSVID.responseSerialize({
          spiffe_id: spiffeId,
          claims: withClaims ? toStruct(claims) : null,
        });
        const ours = decodeValidateJwtSvidResponseMessage(wire);
        const theirs = def.ValidateJWTSVID.responseDeserialize(wire);
        expect(ours.spiffe_id).toBe(theirs.spiffe_id);
        expect(ours.claims === null).toBe(theirs.claims === null);
        expect(fromStruct(ours.claims)).toEqual(fromStruct(theirs.claims));
      }),
    );
  });

  it('encodes JWTSVIDRequest and ValidateJWTSVIDRequest so that proto-loader reads them back', () => {
    fc.assert(
      fc.property(fc.array(text, { maxLength: 3 }), text, text, (audience, spiffeId, token) => {
        expect(
          def.FetchJWTSVID.requestDeserialize(encodeJwtSvidRequest({ audience, spiffe_id: spiffeId })),
        ).toEqual({
          audience,
          spiffe_id: spiffeId,
        });
        expect(
          def.ValidateJWTSVID.requestDeserialize(
            encodeValidateJwtSvidRequest({ audience: spiffeId, svid: token }),
          ),
        ).toEqual({ audience: spiffeId, svid: token });
      }),
    );
  });

  it('skips fields it does not know, of every wire type', () => {
    const known = def.FetchJWTBundles.responseSerialize({ bundles: { 'spiffe://a': Buffer.from('x') } });
    const unknown = Buffer.from([
      (9 << 3) | 0,
      0xac,
      0x02, // varint 300
      (10 << 3) | 1,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8, // fixed64
      (11 << 3) | 2,
      2,
      0xff,
      0xfe, // bytes
      (12 << 3) | 5,
      1,
      2,
      3,
      4, // fixed32
    ]);
    expect(decodeJwtBundlesResponseMessage(Buffer.concat([unknown, known]))).toEqual({
      bundles: { 'spiffe://a': Buffer.from('x') },
    });
  });

  it('refuses truncated and malformed messages with ERR_UNAVAILABLE', () => {
    const wire = def.FetchX509SVID.responseSerialize({
      svids: [{ spiffe_id: 'spiffe://example.org/w', x509_svid: Buffer.alloc(40, 1) }],
    });
    for (const bad of [
      wire.subarray(0, wire.length - 3),
      Buffer.from([0x0a, 0x80]), // truncated length varint
      Buffer.from([0x03]), // field 0
      Buffer.from([(1 << 3) | 3]), // group wire type
    ]) {
      let thrown: unknown;
      try {
        decodeX509SvidResponseMessage(bad);
      } catch (err) {
        thrown = err;
      }
      expect(isSigilError(thrown, 'ERR_UNAVAILABLE')).toBe(true);
    }
  });

  it('keeps a `__proto__` map key as an own entry, never as a prototype', () => {
    const entry = Buffer.concat([field(1, Buffer.from('__proto__')), field(2, Buffer.from('x'))]);
    const decoded = decodeJwtBundlesResponseMessage(field(1, entry));
    expect(Object.getPrototypeOf(decoded.bundles)).toBe(Object.prototype);
    expect(Object.keys(decoded.bundles)).toEqual(['__proto__']);
    const claims = fromStruct(
      decodeValidateJwtSvidResponseMessage(
        field(
          2,
          field(1, Buffer.concat([field(1, Buffer.from('__proto__')), field(2, field(3, Buffer.from('v')))])),
        ),
      ).claims,
    );
    expect(Object.getPrototypeOf(claims)).toBe(Object.prototype);
    expect(Object.entries(claims)).toEqual([['__proto__', 'v']]);
  });

  it('refuses Struct claims nested deeper than it allows instead of exhausting the stack', () => {
    // Struct { fields: { "n": Value { struct_value: … } } }, 100 levels: more than protobufjs encodes.
    let struct: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 100; i++) {
      struct = field(1, Buffer.concat([field(1, Buffer.from('n')), field(2, field(5, struct))]));
    }
    expect(() => decodeValidateJwtSvidResponseMessage(field(2, struct))).toThrow(/nested too deeply/);
  });
});

// ---- requests, as the agent decodes them ------------------------------------------------------------

/** An unknown field of any valid wire type, which a decoder must skip. */
const unknownField = fc.oneof(
  fc
    .record({ n: fc.integer({ min: 3, max: 2 ** 29 - 1 }), v: fc.nat() })
    .map(({ n, v }) => Buffer.concat([varintBytes(n * 8), varintBytes(v)])),
  fc.integer({ min: 3, max: 1000 }).map((n) => Buffer.concat([varintBytes(n * 8 + 1), Buffer.alloc(8, 9)])),
  fc.integer({ min: 3, max: 1000 }).map((n) => Buffer.concat([varintBytes(n * 8 + 5), Buffer.alloc(4, 9)])),
  fc
    .tuple(fc.integer({ min: 3, max: 1000 }), bytes)
    .map(([n, b]) => Buffer.concat([varintBytes(n * 8 + 2), varintBytes(b.length), b])),
);

function varintBytes(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** `wire` with unknown fields placed before and after it. */
const withUnknown = (wire: Buffer, extra: Buffer[]) =>
  Buffer.concat([...extra.slice(1), wire, ...extra.slice(0, 1)]);

describe('Workload API request decoding, against proto-loader', () => {
  it('reads every valid request as proto-loader does, skipping unknown fields of every wire type', () => {
    const methods = [
      ['FetchX509SVID', 'X509SVIDRequest', fc.constant({})],
      ['FetchX509Bundles', 'X509BundlesRequest', fc.constant({})],
      ['FetchJWTBundles', 'JWTBundlesRequest', fc.constant({})],
      ['FetchWITBundles', 'WITBundlesRequest', fc.constant({})],
      [
        'FetchJWTSVID',
        'JWTSVIDRequest',
        fc.record({ audience: fc.array(text, { maxLength: 4 }), spiffe_id: text }),
      ],
      ['ValidateJWTSVID', 'ValidateJWTSVIDRequest', fc.record({ audience: text, svid: text })],
      ['FetchWITSVID', 'WITSVIDRequest', fc.record({ spiffe_id: text })],
    ] as const;
    for (const [method, name, message] of methods) {
      fc.assert(
        fc.property(message, fc.array(unknownField, { maxLength: 3 }), (value, extra) => {
          const wire = withUnknown(def[method].requestSerialize(value), extra);
          expect(decodeWorkloadRequest(name, wire)).toEqual(def[method].requestDeserialize(wire));
        }),
      );
    }
  });

  it('keeps the last value of a singular field sent twice, as protobuf runtimes do', () => {
    const wire = Buffer.concat([field(2, Buffer.from('first')), field(2, Buffer.from('second'))]);
    expect(decodeWorkloadRequest('ValidateJWTSVIDRequest', wire)).toEqual({ audience: '', svid: 'second' });
    expect(def.ValidateJWTSVID.requestDeserialize(wire)).toEqual({ audience: '', svid: 'second' });
  });

  const aud = field(1, Buffer.from('db'));
  it.each([
    ['JWTSVIDRequest', 'a truncated tag varint', Buffer.from([0x8a]), 'truncated varint at byte 0'],
    [
      'JWTSVIDRequest',
      'a tag with no length',
      Buffer.concat([aud, Buffer.from([0x0a])]),
      'truncated varint at byte 5',
    ],
    [
      'JWTSVIDRequest',
      'a length past the end',
      Buffer.from([0x0a, 5, 0x61]),
      'length 5 at byte 1 runs past the end of the message (1 bytes left)',
    ],
    [
      'JWTSVIDRequest',
      'a length varint longer than 64 bits',
      Buffer.from([0x0a, ...Array(10).fill(0xff), 1]),
      'varint at byte 1 overflows 64 bits',
    ],
    [
      'JWTSVIDRequest',
      'an unknown varint past 64 bits',
      Buffer.from([0x18, ...Array(9).fill(0xff), 0x02]),
      'varint at byte 1 overflows 64 bits',
    ],
    [
      'JWTSVIDRequest',
      'audience as a varint',
      Buffer.from([0x08, 0x01]),
      'field 1 (audience) has wire type varint, expected length-delimited',
    ],
    [
      'JWTSVIDRequest',
      'spiffe_id as fixed32',
      Buffer.from([0x15, 1, 2, 3, 4]),
      'field 2 (spiffe_id) has wire type fixed32, expected length-delimited',
    ],
    [
      'JWTSVIDRequest',
      'invalid UTF-8 in audience',
      Buffer.from([0x0a, 2, 0xc3, 0x28]),
      'string at byte 2 is not valid UTF-8',
    ],
    [
      'JWTSVIDRequest',
      'an overlong UTF-8 encoding',
      Buffer.from([0x0a, 2, 0xc0, 0x80]),
      'is not valid UTF-8',
    ],
    [
      'JWTSVIDRequest',
      'a UTF-16 surrogate in UTF-8',
      Buffer.from([0x12, 3, 0xed, 0xa0, 0x80]),
      'is not valid UTF-8',
    ],
    ['JWTSVIDRequest', 'field number 0', Buffer.from([0x02, 0]), 'field number 0 at byte 0'],
    ['JWTSVIDRequest', 'a deprecated group', Buffer.from([0x1b, 0x1c]), 'unsupported wire type start-group'],
    ['JWTSVIDRequest', 'wire type 7', Buffer.from([0x1f]), 'unsupported wire type invalid (7)'],
    [
      'JWTSVIDRequest',
      'a truncated fixed64',
      Buffer.concat([aud, Buffer.from([0x19, 1, 2, 3])]),
      'truncated fixed64 field at byte 5',
    ],
    ['JWTSVIDRequest', 'a truncated fixed32', Buffer.from([0x1d, 1]), 'truncated fixed32 field at byte 1'],
    [
      'ValidateJWTSVIDRequest',
      'invalid UTF-8 in svid',
      Buffer.from([0x12, 1, 0xff]),
      'string at byte 2 is not valid UTF-8',
    ],
    ['X509SVIDRequest', 'garbage in an empty message', Buffer.from([0xff]), 'truncated varint at byte 0'],
    [
      'WITSVIDRequest',
      'a field number above 2^29-1',
      Buffer.from([0xf8, 0xff, 0xff, 0xff, 0x7f, 0]),
      'is above the maximum',
    ],
  ] as const)('%s: refuses %s', (name, _what, wire, message) => {
    let thrown: unknown;
    try {
      decodeWorkloadRequest(name, wire);
    } catch (err) {
      thrown = err;
    }
    expect(isSigilError(thrown, 'ERR_INPUT_INVALID')).toBe(true);
    const text = (thrown as Error).message;
    expect(text.startsWith(`malformed ${name}: `)).toBe(true);
    expect(text).toContain(message);
  });

  it('where proto-loader makes something of the same bytes (the laxness the agent no longer acts on)', () => {
    // Invalid UTF-8 became U+FFFD, and a wrong wire type a default: both once yielded a JWT.
    expect(def.FetchJWTSVID.requestDeserialize(Buffer.from([0x0a, 2, 0xc3, 0x28])).audience).toEqual([
      '\ufffd(',
    ]);
    expect(() => decodeWorkloadRequest('JWTSVIDRequest', Buffer.from([0x0a, 2, 0xc3, 0x28]))).toThrow();
  });
});
