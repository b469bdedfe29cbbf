// The one place that knows how SQLite reports failures. Constraint violations become the domain's
// duplicate codes, named after the table that refused the row; everything else is ERR_DATASTORE
// with the driver's error kept as `cause`, so nothing is swallowed or misreported as a duplicate.
import { SigilError } from '../../../spiffe/errors.js';

export interface FailureContext {
  /** What was being done, e.g. "create entry"; prefixes the message. */
  readonly action: string;
  /** What a duplicate would be, e.g. `an entry with spiffe_id "…"`; used only for duplicates. */
  readonly subject?: string;
}

/** Which code a uniqueness violation in each table means. */
const DUPLICATE_CODES: Readonly<Record<string, SigilError['code']>> = {
  registered_entries: 'ERR_ENTRY_DUPLICATE',
  bundles: 'ERR_BUNDLE_DUPLICATE',
  // Tokens are random; a clash means the caller reused one, which is bad input.
  join_tokens: 'ERR_INPUT_INVALID',
};

export function mapSqliteError(err: unknown, context: FailureContext): SigilError {
  if (err instanceof SigilError) return err;
  const code = sqliteCode(err);
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    // SQLite names the columns, not the index: "UNIQUE constraint failed: bundles.trust_domain".
    const table = /constraint failed: (\w+)\./.exec((err as Error).message)?.[1];
    const domainCode = table === undefined ? undefined : DUPLICATE_CODES[table];
    if (domainCode !== undefined) {
      return new SigilError(
        domainCode,
        `${context.action}: ${context.subject ?? 'the record'} already exists`,
        {
          reason: 'duplicate',
          cause: err,
        },
      );
    }
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new SigilError('ERR_DATASTORE', `${context.action}: sqlite: ${detail}`, {
    reason: code ?? 'unexpected',
    cause: err,
  });
}

function sqliteCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Runs `fn`, rethrowing whatever it throws as a SigilError (see mapSqliteError). */
export function withSqliteErrors<T>(context: FailureContext, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw mapSqliteError(err, context);
  }
}
