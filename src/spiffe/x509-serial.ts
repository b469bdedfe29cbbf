// Certificate serial numbers (RFC 5280 §4.1.2.2), for leaves and CAs alike: 128 random bits, or one
// the caller chose, checked against the RFC's bounds.
import { randomFillSync } from 'node:crypto';
import { SigilError } from './errors.js';

/** RFC 5280 caps serials at 20 octets. */
const MAX_SERIAL_BYTES = 20;
/** 128 random bits: unguessable, and the top bit is cleared so the INTEGER needs no sign octet. */
const RANDOM_SERIAL_BYTES = 16;
/** Random serials are cut from a pooled fill: one getrandom() per 256 leaves instead of one per leaf. */
const SERIAL_POOL_BYTES = RANDOM_SERIAL_BYTES * 256;

let serialPool = Buffer.alloc(0);
let serialPoolAt = 0;

/** A fresh random serial. A view, not a copy: each pool slice is handed out once. */
export function randomSerial(): Buffer {
  if (serialPoolAt + RANDOM_SERIAL_BYTES > serialPool.length) {
    serialPool = randomFillSync(Buffer.allocUnsafe(SERIAL_POOL_BYTES));
    serialPoolAt = 0;
  }
  const serial = serialPool.subarray(serialPoolAt, serialPoolAt + RANDOM_SERIAL_BYTES);
  serialPoolAt += RANDOM_SERIAL_BYTES;
  serial[0]! &= 0x7f;
  // An all-zero draw (probability 2^-127) would be an invalid serial; make it 1 rather than loop.
  if (serial.every((b) => b === 0)) serial[RANDOM_SERIAL_BYTES - 1] = 1;
  return serial;
}

/** `serial` when it is 1-20 octets and not zero; `context` prefixes the error (`x509svid`, `x509ca`). */
export function checkSerial(serial: Buffer, context: string): Buffer {
  if (
    !Buffer.isBuffer(serial) ||
    serial.length === 0 ||
    serial.length > MAX_SERIAL_BYTES ||
    serial.every((b) => b === 0)
  ) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `${context}: serial must be 1-20 bytes and not zero (RFC 5280 §4.1.2.2)`,
      { field: 'serial' },
    );
  }
  return serial;
}
