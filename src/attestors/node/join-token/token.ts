// What both halves of join_token share: the attestor's name and the shape a token must have before
// anything looks it up. Tokens are minted as UUIDs; the check admits any similar opaque string,
// because the token also becomes a path segment of the agent's SPIFFE ID
// (`/sigil/agent/join_token/<token>`) and must be a legal one.

export const JOIN_TOKEN_ATTESTOR = 'join_token';

/** Longest token accepted; far above a UUID's 36, low enough to keep IDs and logs small. */
export const MAX_JOIN_TOKEN_CHARS = 128;

// Letters, digits, "-" and "_" only: a SPIFFE path segment allows these, and leaving out "." rules
// out the forbidden "." and ".." segments.
const JOIN_TOKEN_PATTERN = /^[A-Za-z0-9_-]+$/;

export function isJoinTokenShape(value: string): boolean {
  return value.length <= MAX_JOIN_TOKEN_CHARS && JOIN_TOKEN_PATTERN.test(value);
}
