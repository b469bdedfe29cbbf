// The audiences a JWT-SVID may be asked for. They come from workloads, so every edge that accepts
// them (Workload API, agent API, admin API, mint) applies this one check.
import { quote, SigilError } from './errors.js';
import { unsafeCharacterIn } from './text.js';

/**
 * Audiences come from workloads, so they are bounded: a JWT carries them in every request it
 * authorizes, and agents cache tokens per audience set. SPIFFE recommends a single audience; 16
 * leaves room for the odd multi-audience token, and 1 KiB holds any URL-shaped audience.
 */
export const MAX_JWT_AUDIENCES = 16;
export const MAX_JWT_AUDIENCE_BYTES = 1024;

/**
 * Checks a requested audience list: 1 to MAX_JWT_AUDIENCES values, each a non-empty string of at
 * most MAX_JWT_AUDIENCE_BYTES UTF-8 bytes without control characters. Throws ERR_INPUT_INVALID
 * naming the broken limit; every edge that accepts audiences (Workload API, agent API, admin API,
 * mint) calls this one check.
 */
export function checkJwtAudience(audience: readonly unknown[], field = 'audience'): void {
  if (!Array.isArray(audience) || audience.length === 0) {
    throw audienceError(field, 'audience must be specified', 'audience-empty');
  }
  if (audience.length > MAX_JWT_AUDIENCES) {
    throw audienceError(
      field,
      `at most ${MAX_JWT_AUDIENCES} audience values are allowed (got ${audience.length})`,
      'audience-count',
    );
  }
  for (const aud of audience) {
    if (typeof aud !== 'string' || aud === '') {
      throw audienceError(field, 'audience values must be non-empty strings', 'audience-empty');
    }
    const bytes = Buffer.byteLength(aud, 'utf8');
    if (bytes > MAX_JWT_AUDIENCE_BYTES) {
      throw audienceError(
        field,
        `an audience value may be at most ${MAX_JWT_AUDIENCE_BYTES} bytes (got ${bytes}: ${quote(aud, 40)})`,
        'audience-size',
      );
    }
    const unsafe = unsafeCharacterIn(aud);
    if (unsafe !== undefined) {
      throw audienceError(field, `audience ${quote(aud, 40)} contains a ${unsafe}`, 'audience-char');
    }
  }
}

function audienceError(field: string, message: string, reason: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `${field}: ${message}`, { field, reason });
}
