// SVID lifetimes operators ask for (entries, x509 mint, jwt mint): whole seconds, since certificates
// and JWTs carry whole seconds and a fraction would be dropped without a word, and at least the
// server's min_svid_ttl (see config.ts for why a floor exists).
import { formatDuration, parseWholeSecondsMs } from '../../../spiffe/duration.js';
import { quote, SigilError } from '../../../spiffe/errors.js';

export function svidTtlMs(input: number | string, field: string, minMs: number): number {
  const ms = parseWholeSecondsMs(input, field);
  if (ms < minMs) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `${field}: ${quote(input)} is shorter than the server's minimum SVID lifetime of ${formatDuration(minMs)} (min_svid_ttl)`,
      { field, reason: 'ttl-minimum' },
    );
  }
  return ms;
}
