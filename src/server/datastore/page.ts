// Keyset pagination shared by every engine: a page token is the base64url of the last key returned,
// so a page is "key > last ORDER BY key LIMIT n" and stays cheap however deep the caller pages.
// Tokens are opaque to callers; nothing here trusts them beyond decoding.
import { quote, SigilError } from '../../spiffe/errors.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type Page } from './types.js';

export interface PageRequest {
  /** Rows to return; the engine fetches one more to learn whether another page follows. */
  readonly size: number;
  /** Return only keys after this one; null for the first page. */
  readonly after: string | null;
}

/** Validates a caller's page: size defaults to DEFAULT_PAGE_SIZE and is capped at MAX_PAGE_SIZE. */
export function resolvePage(page: Page | undefined): PageRequest {
  const requested = page?.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(requested) || requested < 1) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `page_size: must be a positive integer (got ${quote(requested)})`,
      {
        field: 'page_size',
        reason: 'page-size',
      },
    );
  }
  return { size: Math.min(requested, MAX_PAGE_SIZE), after: decodePageToken(page?.pageToken) };
}

/** `rows` holds up to size + 1 items; returns the page and, when more follow, the next token. */
export function toPage<T>(rows: readonly T[], request: PageRequest, keyOf: (item: T) => string) {
  const items = rows.slice(0, request.size);
  const last = items[items.length - 1];
  const more = rows.length > request.size && last !== undefined;
  return more ? { items, nextPageToken: encodePageToken(keyOf(last)) } : { items };
}

function encodePageToken(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodePageToken(token: string | undefined): string | null {
  if (token === undefined || token === '') return null;
  const key = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url').toString('utf8') : '';
  // Re-encoding catches tokens that only look like base64url (stray bits, invalid UTF-8).
  if (key === '' || encodePageToken(key) !== token) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `page_token: ${quote(token)} is not a token from a previous page`,
      {
        field: 'page_token',
        reason: 'page-token',
      },
    );
  }
  return key;
}
