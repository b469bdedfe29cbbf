import { describe, expect, it } from 'vitest';
import { SigilError } from '../spiffe/errors.js';
import { proxyErrorResponse } from './errors.js';
import { filterHeaders } from './headers.js';

describe('filterHeaders', () => {
  it('drops hop-by-hop headers, Proxy-* and those named in Connection, keeping case, order and duplicates', () => {
    const raw = [
      'Host',
      'app',
      'Connection',
      'keep-alive, X-Hop',
      'X-Hop',
      'secret',
      'Keep-Alive',
      'timeout=5',
      'Proxy-Authorization',
      'Basic x',
      'TE',
      'trailers',
      'Trailer',
      'X-T',
      'Transfer-Encoding',
      'chunked',
      'Upgrade',
      'h2c',
      'X-Dup',
      '1',
      'x-dup',
      '2',
      'Expect',
      '100-continue',
    ];
    const { headers, hasBody } = filterHeaders(raw);
    expect(headers).toEqual(['Host', 'app', 'X-Dup', '1', 'x-dup', '2']);
    expect(hasBody).toBe(true);
  });

  it('strips identity headers and reports each one', () => {
    const { headers, hasBody, stripped } = filterHeaders(
      ['X-Sigil-Peer-Id', 'spiffe://evil/x', 'Content-Length', '0', 'x-forwarded-client-cert', 'By=x'],
      { strip: new Set(['x-sigil-peer-id', 'x-forwarded-client-cert']) },
    );
    expect(headers).toEqual(['Content-Length', '0']);
    expect(hasBody).toBe(false);
    expect(stripped).toEqual(['X-Sigil-Peer-Id', 'x-forwarded-client-cert']);
  });

  it('keeps Connection: Upgrade and Upgrade for a WebSocket handshake', () => {
    const { headers } = filterHeaders(['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Keep-Alive', '1'], {
      keepUpgrade: true,
    });
    expect(headers).toEqual(['Connection', 'Upgrade', 'Upgrade', 'websocket']);
  });

  it('drops exactly the hop-by-hop names, whatever their case, and only what Connection names besides', () => {
    const names = ['TE', 'Expect', 'Trailer', 'Upgrade', 'Keep-Alive', 'Connection', 'Transfer-Encoding'];
    // Same lengths as hop-by-hop names, or close to them: all end to end.
    const kept = ['Tx', 'Accept', 'Referer', 'X-Upgrade', 'User-Agent', 'Keep-Alive2', 'Content-Language'];
    const raw = [...names, ...kept].flatMap((name) => [name, 'v']);
    expect(filterHeaders(raw).headers).toEqual(kept.flatMap((name) => [name, 'v']));
    // Connection naming only keep-alive (undici's) or hop-by-hop names strips nothing more.
    for (const value of ['keep-alive', 'Keep-Alive', 'close', 'TE, keep-alive']) {
      expect(filterHeaders(['Connection', value, 'Accept', '*/*']).headers).toEqual(['Accept', '*/*']);
    }
    const upgrade = filterHeaders(
      ['Connection', 'Upgrade, TE, X-Hop', 'TE', 'trailers', 'X-Hop', '1', 'Upgrade', 'ws'],
      {
        keepUpgrade: true,
      },
    );
    expect(upgrade.headers).toEqual(['Connection', 'Upgrade, TE, X-Hop', 'Upgrade', 'ws']);
  });

  it('reads raw Buffers as undici hands them', () => {
    const { headers } = filterHeaders([
      Buffer.from('Set-Cookie'),
      Buffer.from('a'),
      Buffer.from('Connection'),
      Buffer.from('close'),
    ]);
    expect(headers).toEqual(['Set-Cookie', 'a']);
  });
});

describe('proxyErrorResponse', () => {
  it.each([
    [
      new SigilError('ERR_PERMISSION_DENIED', 'x', { reason: 'server-id' }),
      502,
      'upstream-identity-mismatch',
    ],
    [new SigilError('ERR_PERMISSION_DENIED', 'x'), 403, 'forbidden'],
    [new SigilError('ERR_X509_VERIFY_FAILED', 'x', { reason: 'expired' }), 502, 'upstream-identity-invalid'],
    [new SigilError('ERR_UNAVAILABLE', 'x', { reason: 'connect' }), 503, 'upstream-unavailable'],
    [new SigilError('ERR_UNAVAILABLE', 'x', { reason: 'timeout' }), 504, 'upstream-timeout'],
    [Object.assign(new Error('t'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), 504, 'upstream-timeout'],
    [Object.assign(new Error('r'), { code: 'ECONNREFUSED' }), 503, 'upstream-unavailable'],
    [new Error('other'), 502, 'upstream-failed'],
  ])('maps %s to %i %s', (err, status, error) => {
    expect(proxyErrorResponse(err)).toEqual({ status, error });
  });
});
