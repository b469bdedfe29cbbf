import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DerTag,
  derBitString,
  derBoolean,
  derContext,
  derInteger,
  derLength,
  derNull,
  derOctetString,
  derOid,
  derPrintableString,
  derSequence,
  derSet,
  derTime,
  derTlv,
  derUtf8String,
  expectTlv,
  readChildren,
  readOid,
  readSmallInteger,
  readTime,
  readTlv,
  readUnsignedInteger,
  splitConcatenatedDer,
  tlvBytes,
  tlvValue,
} from './der.js';
import { isSigilError } from './errors.js';
import { parseTrustDomain } from './id.js';
import { generateKey } from './keys.js';
import { createCaCertificate } from './x509-authority.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function derErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isSigilError(err, 'ERR_DER_INVALID')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected ERR_DER_INVALID, nothing was thrown');
}

describe('builders', () => {
  it('encodes lengths in short and minimal long form', () => {
    expect(hex(derLength(0))).toBe('00');
    expect(hex(derLength(127))).toBe('7f');
    expect(hex(derLength(128))).toBe('8180');
    expect(hex(derLength(255))).toBe('81ff');
    expect(hex(derLength(256))).toBe('820100');
    expect(hex(derLength(65535))).toBe('82ffff');
    expect(hex(derLength(65536))).toBe('83010000');
    expect(hex(derLength(0x01000000))).toBe('8401000000');
  });

  it('wraps contents in a TLV, concatenating several parts', () => {
    expect(hex(derTlv(0x04, Buffer.from('ab', 'hex'), Buffer.from('cd', 'hex')))).toBe('0402abcd');
    expect(hex(derSequence())).toBe('3000');
    expect(hex(derSet(derNull(), derBoolean(true)))).toBe('31050500' + '0101ff');
    const big = derOctetString(Buffer.alloc(300, 7));
    expect(hex(big.subarray(0, 4))).toBe('0482012c');
    expect(big.length).toBe(304);
  });

  it('encodes non-negative integers minimally, adding a sign octet only when the top bit is set', () => {
    expect(hex(derInteger(0))).toBe('020100');
    expect(hex(derInteger(2))).toBe('020102');
    expect(hex(derInteger(127))).toBe('02017f');
    expect(hex(derInteger(128))).toBe('02020080');
    expect(hex(derInteger(256))).toBe('02020100');
    expect(hex(derInteger(0x1234567890n))).toBe('02051234567890');
    expect(hex(derInteger(Buffer.from('0000ff', 'hex')))).toBe('020200ff');
    expect(hex(derInteger(Buffer.from('00007f', 'hex')))).toBe('02017f');
    expect(hex(derInteger(Buffer.alloc(0)))).toBe('020100');
    derErrorOf(() => derInteger(-1));
    derErrorOf(() => derInteger(2 ** 60));
  });

  it('encodes OIDs, including multi-byte arcs', () => {
    expect(hex(derOid('2.5.29.17'))).toBe('0603551d11');
    expect(hex(derOid('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302');
    expect(hex(derOid('1.2.840.113549.1.1.11'))).toBe('06092a864886f70d01010b');
    expect(hex(derOid('2.999.3'))).toBe('0603883703');
    expect(derErrorOf(() => derOid('1.2.x'))).toContain('non-numeric arc');
    expect(derErrorOf(() => derOid('1'))).toContain('not a valid OID');
    expect(derErrorOf(() => derOid('1.40'))).toContain('not a valid OID');
    expect(derErrorOf(() => derOid('3.1'))).toContain('not a valid OID');
  });

  it('round-trips any OID through the reader', () => {
    const oid = fc
      .tuple(
        fc.constantFrom(0, 1, 2),
        fc.nat({ max: 39 }),
        fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n }), { maxLength: 6 }),
      )
      .map(([a, b, rest]) => [a, b, ...rest].join('.'));
    fc.assert(
      fc.property(oid, (dotted) => {
        const der = derOid(dotted);
        expect(readOid(der, readTlv(der))).toBe(dotted);
      }),
    );
  });

  it('encodes bit strings, octet strings and strings', () => {
    expect(hex(derBitString(Buffer.from('a8', 'hex'), 3))).toBe('030203a8');
    expect(hex(derBitString(Buffer.from('0102', 'hex')))).toBe('0303000102');
    derErrorOf(() => derBitString(Buffer.alloc(0), 1));
    derErrorOf(() => derBitString(Buffer.from('00', 'hex'), 8));
    expect(hex(derOctetString(Buffer.from('3000', 'hex')))).toBe('04023000');
    expect(hex(derUtf8String('Sigil'))).toBe('0c05536967696c');
    expect(hex(derUtf8String('é'))).toBe('0c02c3a9');
    expect(hex(derPrintableString('ab12'))).toBe('130461623132');
    expect(derErrorOf(() => derPrintableString('a*b'))).toContain('PrintableString');
  });

  it('encodes context tags as constructed or primitive', () => {
    expect(hex(derContext(0, true, derInteger(2)))).toBe('a003020102');
    expect(hex(derContext(6, false, Buffer.from('a')))).toBe('860161');
    expect(hex(derContext(3, true, derSequence()))).toBe('a3023000');
    derErrorOf(() => derContext(31, false));
  });

  it('uses UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280)', () => {
    const text = (b: Buffer) => b.subarray(2).toString('latin1');
    const last = derTime(Date.UTC(2049, 11, 31, 23, 59, 59));
    expect(last[0]).toBe(DerTag.UTC_TIME);
    expect(text(last)).toBe('491231235959Z');
    const first = derTime(Date.UTC(2050, 0, 1, 0, 0, 0));
    expect(first[0]).toBe(DerTag.GENERALIZED_TIME);
    expect(text(first)).toBe('20500101000000Z');
    const y1950 = derTime(Date.UTC(1950, 0, 1));
    expect(y1950[0]).toBe(DerTag.UTC_TIME);
    expect(text(y1950)).toBe('500101000000Z');
    expect(text(derTime(Date.UTC(2026, 2, 4, 5, 6, 7, 999)))).toBe('260304050607Z');
    derErrorOf(() => derTime(Date.UTC(1949, 11, 31)));
    derErrorOf(() => derTime(Number.NaN));
  });

  it('reads back every time it writes, to the second', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1950, 0, 1), max: Date.UTC(9999, 11, 31) }), (ms) => {
        const der = derTime(ms);
        expect(readTime(der, readTlv(der))).toBe(Math.floor(ms / 1000) * 1000);
      }),
    );
  });
});

describe('reader', () => {
  it('reads a TLV and walks a SEQUENCE', () => {
    const seq = derSequence(
      derInteger(5),
      derOctetString(Buffer.from('beef', 'hex')),
      derSequence(derNull()),
    );
    const outer = readTlv(seq);
    expect(outer).toEqual({ tag: 0x30, start: 0, valueStart: 2, end: seq.length });
    const children = readChildren(seq, outer);
    expect(children.map((c) => c.tag)).toEqual([0x02, 0x04, 0x30]);
    expect(readSmallInteger(seq, children[0]!)).toBe(5);
    expect(hex(tlvValue(seq, children[1]!))).toBe('beef');
    expect(hex(tlvBytes(seq, children[2]!))).toBe('30020500');
    expect(readChildren(seq, children[2]!).map((c) => c.tag)).toEqual([0x05]);
    expect(derErrorOf(() => readChildren(seq, children[0]!))).toContain('primitive');
  });

  it('reads long-form lengths at an offset inside a larger buffer', () => {
    const body = derOctetString(Buffer.alloc(200, 1));
    const buf = Buffer.concat([Buffer.from('ffff', 'hex'), body]);
    const tlv = readTlv(buf, 2);
    expect(tlv).toEqual({ tag: 0x04, start: 2, valueStart: 5, end: 205 });
    expect(expectTlv(buf, 2, DerTag.OCTET_STRING, 'x').end).toBe(205);
    expect(derErrorOf(() => expectTlv(buf, 2, DerTag.SEQUENCE, 'the thing'))).toContain('expected the thing');
  });

  it('rejects truncation, indefinite and non-minimal lengths, multi-byte tags', () => {
    expect(derErrorOf(() => readTlv(Buffer.alloc(0)))).toContain('data ended');
    expect(derErrorOf(() => readTlv(Buffer.from('30', 'hex')))).toContain('before its length');
    expect(derErrorOf(() => readTlv(Buffer.from('300501', 'hex')))).toContain('truncated');
    expect(derErrorOf(() => readTlv(Buffer.from('3082', 'hex')))).toContain('inside its length');
    expect(derErrorOf(() => readTlv(Buffer.from('30800000', 'hex')))).toContain('indefinite');
    expect(derErrorOf(() => readTlv(Buffer.from('30817f', 'hex')))).toContain('minimally');
    expect(derErrorOf(() => readTlv(Buffer.from('3082000100', 'hex')))).toContain('minimally');
    expect(derErrorOf(() => readTlv(Buffer.from('3f0100', 'hex')))).toContain('multi-byte');
    expect(derErrorOf(() => readTlv(Buffer.from('3085010000000000', 'hex')))).toContain('5 octets');
    // A child running past its parent's end is truncated even when the buffer continues.
    const lying = Buffer.from('30030404aabbccdd', 'hex');
    expect(derErrorOf(() => readChildren(lying, readTlv(lying)))).toContain('truncated');
  });

  it('reads unsigned integers and refuses negative or padded ones', () => {
    const read = (h: string) => {
      const b = Buffer.from(h, 'hex');
      return hex(readUnsignedInteger(b, readTlv(b)));
    };
    expect(read('020100')).toBe('00');
    expect(read('02020080')).toBe('80');
    expect(read('02017f')).toBe('7f');
    expect(derErrorOf(() => read('020180'))).toContain('negative');
    expect(derErrorOf(() => read('0202007f'))).toContain('minimally');
    expect(derErrorOf(() => read('0200'))).toContain('empty');
  });

  it('refuses malformed times and OIDs', () => {
    const tlv = (tag: number, text: string) => derTlv(tag, Buffer.from(text, 'latin1'));
    const readT = (b: Buffer) => readTime(b, readTlv(b));
    expect(derErrorOf(() => readT(tlv(DerTag.UTC_TIME, '2601010000Z')))).toContain('YYMMDDHHMMSSZ');
    expect(derErrorOf(() => readT(tlv(DerTag.UTC_TIME, '260230000000Z')))).toContain('not a real date');
    expect(derErrorOf(() => readT(tlv(DerTag.GENERALIZED_TIME, '20260101000000.5Z')))).toContain(
      'YYYYMMDDHHMMSSZ',
    );
    expect(derErrorOf(() => readT(derInteger(1)))).toContain('expected a time');
    expect(readT(tlv(DerTag.UTC_TIME, '500101000000Z'))).toBe(Date.UTC(1950, 0, 1));
    expect(readT(tlv(DerTag.UTC_TIME, '491231235959Z'))).toBe(Date.UTC(2049, 11, 31, 23, 59, 59));
    const badOid = Buffer.from('06022a86', 'hex');
    expect(derErrorOf(() => readOid(badOid, readTlv(badOid)))).toContain('inside an arc');
    const padded = Buffer.from('0603 2a 80 01'.replace(/ /g, ''), 'hex');
    expect(derErrorOf(() => readOid(padded, readTlv(padded)))).toContain('non-minimal');
  });
});

describe('splitConcatenatedDer', () => {
  let certs: Buffer[] = [];

  beforeAll(async () => {
    const td = parseTrustDomain('example.org');
    const base = Date.UTC(2026, 0, 1);
    certs = await Promise.all(
      (['ec-p256', 'ec-p384', 'rsa-2048', 'ec-p256'] as const).map((keyType, i) =>
        createCaCertificate({
          trustDomain: td,
          key: generateKey(keyType),
          notBeforeMs: base,
          notAfterMs: base + (i + 1) * 86_400_000,
        }),
      ),
    );
    // Sanity: these are real certificates, so the round trip below is over the real thing.
    for (const der of certs) expect(new X509Certificate(der).ca).toBe(true);
  });

  it('round-trips any list of certificates (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: certs.length - 1 }), { maxLength: 12 }), (picks) => {
        const list = picks.map((i) => certs[i]!);
        const split = splitConcatenatedDer(Buffer.concat(list));
        expect(split.length).toBe(list.length);
        for (const [i, der] of split.entries()) expect(der.equals(list[i]!)).toBe(true);
      }),
    );
  });

  it('round-trips arbitrary SEQUENCEs of every length form (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 70_000 }), { maxLength: 4 }), (bodies) => {
        const list = bodies.map((b) => derSequence(b));
        const split = splitConcatenatedDer(Buffer.concat(list));
        expect(split.map(hex)).toEqual(list.map(hex));
      }),
      { numRuns: 30 },
    );
  });

  it('returns copies, not views of the input', () => {
    const joined = Buffer.concat(certs.slice(0, 2));
    const [first] = splitConcatenatedDer(joined);
    joined.fill(0);
    expect(first!.equals(certs[0]!)).toBe(true);
  });

  it('gives an empty list for empty input', () => {
    expect(splitConcatenatedDer(Buffer.alloc(0))).toEqual([]);
  });

  it('rejects truncation, trailing garbage and non-SEQUENCE elements', () => {
    const joined = Buffer.concat(certs.slice(0, 2));
    expect(derErrorOf(() => splitConcatenatedDer(joined.subarray(0, joined.length - 1)))).toContain(
      'truncated',
    );
    expect(derErrorOf(() => splitConcatenatedDer(Buffer.concat([joined, Buffer.from([0x30])])))).toContain(
      'before its length',
    );
    const garbage = Buffer.concat([certs[0]!, Buffer.from('0401ff', 'hex')]);
    expect(derErrorOf(() => splitConcatenatedDer(garbage))).toContain('element 2 is not a SEQUENCE');
    expect(derErrorOf(() => splitConcatenatedDer(Buffer.from('-----BEGIN CERTIFICATE-----')))).toContain(
      'not a SEQUENCE',
    );
  });

  it('rejects random bytes that are not certificates, never returning partial data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        let result: Buffer[] | undefined;
        try {
          result = splitConcatenatedDer(bytes);
        } catch (err) {
          expect(isSigilError(err, 'ERR_DER_INVALID')).toBe(true);
          return;
        }
        expect(Buffer.concat(result).equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });
});
