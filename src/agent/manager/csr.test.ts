import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSigilError } from '../../spiffe/errors.js';
import { generateKey } from '../../spiffe/keys.js';
import { parseCsr } from '../../spiffe/x509-svid.js';
import { createCsr, createSvidKeyRequest } from './csr.js';

describe('createSvidKeyRequest', () => {
  it('builds a CSR the server parser accepts, for the generated key', () => {
    const request = createSvidKeyRequest();
    const parsed = parseCsr(request.csr);
    expect(parsed.keyType).toBe('ec-p256');
    expect(parsed.spkiDer).toEqual(request.spkiDer);
    expect(parsed.spkiDer).toEqual(createPublicKey(request.key).export({ type: 'spki', format: 'der' }));
  });

  it('refuses keys other than P-256 private keys', () => {
    for (const key of [generateKey('ec-p384'), createPublicKey(generateKey('ec-p256'))]) {
      let err: unknown;
      try {
        createCsr(key);
      } catch (e) {
        err = e;
      }
      expect(isSigilError(err, 'ERR_KEY_INVALID')).toBe(true);
    }
  });
});
