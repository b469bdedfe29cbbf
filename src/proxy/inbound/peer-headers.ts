// The identity headers the inbound proxy hands the app. They are always set from the verified TLS
// peer or removed, never passed through: a caller could otherwise claim any identity by sending
// them (STYLE.md §11, after linkerd's set_identity_header).

export const PEER_ID_HEADER = 'x-sigil-peer-id';
export const XFCC_HEADER = 'x-forwarded-client-cert';
/** Names removed from every incoming request before the verified values are added. */
export const IDENTITY_HEADERS: ReadonlySet<string> = new Set([PEER_ID_HEADER, XFCC_HEADER]);

export interface VerifiedCaller {
  readonly spiffeId: string;
  readonly leafSha256Hex: string;
}

/** Appends the verified identity headers to a raw header array (nothing for a plaintext caller). */
export function appendPeerHeaders(headers: string[], ownId: string, caller: VerifiedCaller | null): void {
  if (caller === null) return;
  headers.push(XFCC_HEADER, xfccValue(ownId, caller), PEER_ID_HEADER, caller.spiffeId);
}

/** Envoy's XFCC element: By = the proxy's own identity, Hash = SHA-256 of the client leaf, URI = its SAN. */
export function xfccValue(ownId: string, caller: VerifiedCaller): string {
  return `By=${ownId};Hash=${caller.leafSha256Hex};URI=${caller.spiffeId}`;
}
