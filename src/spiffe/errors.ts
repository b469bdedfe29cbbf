// One error type for all of Sigil. Callers switch on `code`, never on message text; each edge
// (admin REST, agent gRPC, CLI) maps codes to its own status in one table.

/**
 * Every error code, in one list so that tests can walk them all. Each API edge maps them in a table
 * typed `Record<SigilErrorCode, …>`: a code added here does not compile until every edge places it.
 */
export const SIGIL_ERROR_CODES = [
  // SPIFFE core
  'ERR_SPIFFE_ID_INVALID',
  'ERR_SPIFFE_ID_RESERVED',
  'ERR_TRUST_DOMAIN_INVALID',
  'ERR_SELECTOR_INVALID',
  'ERR_DURATION_INVALID',
  'ERR_PEM_INVALID',
  'ERR_DER_INVALID',
  'ERR_KEY_INVALID',
  'ERR_CSR_INVALID',
  'ERR_X509_SVID_INVALID',
  'ERR_X509_VERIFY_FAILED',
  'ERR_JWT_INVALID',
  'ERR_JWT_EXPIRED',
  'ERR_JWT_AUDIENCE',
  'ERR_JWT_ALG',
  'ERR_JWT_KEY_NOT_FOUND',
  'ERR_JWT_SIGNATURE',
  'ERR_BUNDLE_INVALID',
  'ERR_BUNDLE_NOT_FOUND',
  // configuration and input
  'ERR_CONFIG_INVALID',
  'ERR_INPUT_INVALID',
  'ERR_POLICY_INVALID',
  // datastore
  'ERR_ENTRY_DUPLICATE',
  'ERR_ENTRY_NOT_FOUND',
  'ERR_NODE_NOT_FOUND',
  'ERR_TOKEN_NOT_FOUND',
  'ERR_TOKEN_EXPIRED',
  'ERR_BUNDLE_DUPLICATE',
  'ERR_REVISION_CONFLICT',
  'ERR_DATASTORE',
  // CA
  'ERR_CA_UNAVAILABLE',
  'ERR_AUTHORITY_NOT_FOUND',
  'ERR_AUTHORITY_STATE',
  'ERR_UPSTREAM_INVALID',
  // access
  'ERR_UNAUTHENTICATED',
  'ERR_PERMISSION_DENIED',
  /** A socket, or a directory on its path, that someone other than us (or root) could swap. */
  'ERR_SOCKET_UNSAFE',
  'ERR_RESOURCE_EXHAUSTED',
  /** A data directory claimed by another live process (data-dir-lock.ts). */
  'ERR_DATA_DIR_LOCKED',
  // transport / CLI
  'ERR_UNAVAILABLE',
  'ERR_NOT_IMPLEMENTED',
] as const;

export type SigilErrorCode = (typeof SIGIL_ERROR_CODES)[number];

export interface SigilErrorOptions {
  /** The input field (dotted path or parameter name) the error is about. */
  field?: string;
  /** A short machine-readable reason within the code, e.g. `trust-domain-char`. */
  reason?: string;
  cause?: unknown;
}

export class SigilError extends Error {
  override readonly name = 'SigilError';
  readonly code: SigilErrorCode;
  readonly field: string | undefined;
  readonly reason: string | undefined;

  constructor(code: SigilErrorCode, message: string, options: SigilErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
    this.reason = options.reason;
  }
}

export function isSigilError(err: unknown, code?: SigilErrorCode): err is SigilError {
  return err instanceof SigilError && (code === undefined || err.code === code);
}

/** Quotes a user-supplied value for an error message, trimmed so a huge input cannot flood logs. */
export function quote(value: unknown, maxChars = 80): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  const trimmed = text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
  return JSON.stringify(trimmed);
}
