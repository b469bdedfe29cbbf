import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SigilError } from './errors.js';
import { decodePem, decodePemBlocks, encodePem } from './pem.js';

function caught(fn: () => unknown): SigilError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SigilError);
    return err as SigilError;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

const bytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) % 256));

describe('encodePem', () => {
  it('wraps base64 at 64 columns and ends with a newline', () => {
    const pem = encodePem('CERTIFICATE', bytes(100));
    const lines = pem.split('\n');
    expect(lines[0]).toBe('-----BEGIN CERTIFICATE-----');
    expect(lines[1]).toHaveLength(64);
    expect(lines[lines.length - 2]).toBe('-----END CERTIFICATE-----');
    expect(pem.endsWith('\n')).toBe(true);
  });
});

describe('decodePem', () => {
  it('reads several blocks, ignoring text around them', () => {
    const text = `Bag Attributes: x\n${encodePem('CERTIFICATE', bytes(10))}# note\n${encodePem('PRIVATE KEY', bytes(20))}`;
    const blocks = decodePem(text);
    expect(blocks.map((b) => b.label)).toEqual(['CERTIFICATE', 'PRIVATE KEY']);
    expect(blocks[0]!.der.equals(bytes(10))).toBe(true);
    expect(blocks[1]!.der.equals(bytes(20))).toBe(true);
  });

  it('accepts CRLF line endings', () => {
    const pem = encodePem('CERTIFICATE', bytes(70)).replace(/\n/g, '\r\n');
    expect(decodePem(pem)[0]!.der.equals(bytes(70))).toBe(true);
  });

  it('returns no blocks for text without any', () => {
    expect(decodePem('nothing here')).toEqual([]);
  });

  it.each([
    [
      'BEGIN/END labels differ',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n',
      'truncated or its BEGIN/END labels differ',
    ],
    ['END missing', '-----BEGIN CERTIFICATE-----\nAAAA\n', 'truncated'],
    ['empty body', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', 'has invalid base64'],
    ['bad padding', '-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n', 'has invalid base64'],
    [
      'padding in the middle',
      '-----BEGIN CERTIFICATE-----\nAA==AAAA\n-----END CERTIFICATE-----\n',
      'has invalid base64',
    ],
  ])('refuses a block with %s', (_what, text, rule) => {
    const err = caught(() => decodePem(text, 'ca_bundle'));
    expect(err.code).toBe('ERR_PEM_INVALID');
    expect(err.field).toBe('ca_bundle');
    expect(err.message).toContain(`ca_bundle: `);
    expect(err.message).toContain(rule);
  });

  it('refuses a non-string', () => {
    expect(caught(() => decodePem(Buffer.from('x') as unknown as string)).code).toBe('ERR_PEM_INVALID');
  });
});

describe('decodePemBlocks', () => {
  it('keeps only the label asked for', () => {
    const text = encodePem('PRIVATE KEY', bytes(5)) + encodePem('CERTIFICATE', bytes(6));
    const ders = decodePemBlocks(text, 'CERTIFICATE');
    expect(ders).toHaveLength(1);
    expect(ders[0]!.equals(bytes(6))).toBe(true);
  });

  it('requires at least one block with the label', () => {
    const err = caught(() => decodePemBlocks(encodePem('PRIVATE KEY', bytes(5)), 'CERTIFICATE', 'cert_file'));
    expect(err.code).toBe('ERR_PEM_INVALID');
    expect(err.message).toBe('cert_file: no "CERTIFICATE" PEM block found');
  });
});

describe('properties', () => {
  it('encode then decode returns the same bytes, for one block or several', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 600 }), { minLength: 1, maxLength: 4 }),
        (ders) => {
          const text = ders.map((der) => encodePem('CERTIFICATE', der)).join('');
          const blocks = decodePem(text);
          expect(blocks.map((b) => b.der.toString('hex'))).toEqual(
            ders.map((d) => Buffer.from(d).toString('hex')),
          );
        },
      ),
    );
  });

  it('random text yields blocks or a SigilError, nothing else', () => {
    const noisy = fc.oneof(
      fc.string(),
      fc.string().map((s) => `-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`),
    );
    fc.assert(
      fc.property(noisy, (text) => {
        try {
          decodePem(text);
        } catch (err) {
          expect(err).toBeInstanceOf(SigilError);
        }
      }),
    );
  });
});
