import { describe, expect, it } from 'vitest';
import { SigilError } from '../spiffe/errors.js';
import { PROXY_ERROR_STATUS, ProxyError, type ProxyErrorReason, proxyErrorResponse } from './errors.js';

describe('proxyErrorResponse for ProxyError', () => {
  it('maps every reason to its status, with the reason itself as x-sigil-error', () => {
    for (const [reason, status] of Object.entries(PROXY_ERROR_STATUS)) {
      const err = new ProxyError(reason as ProxyErrorReason, `proxy: ${reason}`);
      expect(err.status).toBe(status);
      expect(err.code).toBe('ERR_UNAVAILABLE');
      expect(proxyErrorResponse(err)).toEqual({ status, error: reason });
    }
  });

  it('leaves the connector’s own failures as they were: a connect timeout is still upstream-timeout', () => {
    const connectTimeout = new SigilError('ERR_UNAVAILABLE', 'proxy: upstream did not complete mTLS', {
      reason: 'timeout',
    });
    expect(proxyErrorResponse(connectTimeout)).toEqual({ status: 504, error: 'upstream-timeout' });
    expect(proxyErrorResponse(new ProxyError('timeout', 'proxy: request timed out'))).toEqual({
      status: 504,
      error: 'timeout',
    });
  });
});
