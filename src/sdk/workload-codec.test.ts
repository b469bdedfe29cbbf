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
    let struct = Buffer.alloc(0);
    for (let i = 0; i < 100; i++) {
      struct = field(1, Buffer.concat([field(1, Buffer.from('n')), field(2, field(5, struct))]));
    }
    expect(() => decodeValidateJwtSvidResponseMessage(field(2, struct))).toThrow(/nested too deeply/);
  });
});
