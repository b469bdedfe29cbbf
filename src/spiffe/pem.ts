// PEM blocks in and out. The one PEM reader in Sigil: everything that takes PEM goes through here.
import { SigilError } from './errors.js';

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([^-]*?)-----END \1-----/g;

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every PEM block in `text`; text outside blocks (comments, openssl "Bag Attributes") is ignored. */
export function decodePem(text: string, field = 'pem'): PemBlock[] {
  if (typeof text !== 'string') {
    throw new SigilError('ERR_PEM_INVALID', `${field}: expected PEM text`, { field });
  }
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    const body = match[2]!.replace(/\s+/g, '');
    if (body === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
      throw new SigilError('ERR_PEM_INVALID', `${field}: PEM block "${match[1]}" has invalid base64`, {
        field,
      });
    }
    blocks.push({ label: match[1]!, der: Buffer.from(body, 'base64') });
  }
  const begins = text.match(/-----BEGIN /g)?.length ?? 0;
  if (begins !== blocks.length) {
    throw new SigilError(
      'ERR_PEM_INVALID',
      `${field}: PEM block is truncated or its BEGIN/END labels differ`,
      {
        field,
      },
    );
  }
  return blocks;
}

/** The DER of every block with `label`; at least one must be there. */
export function decodePemBlocks(text: string, label: string, field = 'pem'): Buffer[] {
  const found = decodePem(text, field).filter((b) => b.label === label);
  if (found.length === 0) {
    throw new SigilError('ERR_PEM_INVALID', `${field}: no "${label}" PEM block found`, { field });
  }
  return found.map((b) => b.der);
}
