// What a failed call to the server means for the agent's identity: the server refused us (attest
// again with the evidence we have, or report it), it is overloaded or away (back off and retry), or
// we cannot verify it because our trust bundle is stale (tell the operator how to fix it). Pure.
import { status } from '@grpc/grpc-js';
import { isSigilError } from '../../spiffe/errors.js';

export type ServerFailureKind = 'refused' | 'rate-limited' | 'stale-bundle' | 'unavailable';

// grpc-js folds every TLS failure into UNAVAILABLE and keeps only OpenSSL's text in `details`, so
// the two TLS cases are told apart by that text (Node's wording of OpenSSL's verify errors and
// alerts); there is no code to switch on.
/** Our side could not chain the server's certificate to any authority in our bundle. */
const UNKNOWN_ISSUER =
  /unable to verify the first certificate|UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to get (?:local )?issuer certificate|UNABLE_TO_GET_ISSUER_CERT|self[- ]signed certificate in certificate chain|SELF_SIGNED_CERT_IN_CHAIN/i;
/** The server's TLS stack refused our client certificate with an alert (its chain is not trusted). */
const CLIENT_CERT_REFUSED =
  /alert (?:bad certificate|unknown ca|certificate unknown|certificate revoked)|ALERT_(?:BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_REVOKED)/i;

/** The gRPC status code of `err`, when it (or its cause) carries one. */
function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return code;
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause === undefined || cause === err ? undefined : grpcCode(cause);
}

/** Every text `err` and its causes carry: grpc-js `details` and messages. */
function textsOf(err: unknown, depth = 0): string {
  if (err === null || typeof err !== 'object' || depth > 4) return String(err ?? '');
  const { details, message, cause } = err as { details?: unknown; message?: unknown; cause?: unknown };
  return [details, message, cause === undefined ? '' : textsOf(cause, depth + 1)]
    .filter((t) => typeof t === 'string' && t.length > 0)
    .join(' | ');
}

export function classifyServerFailure(err: unknown): ServerFailureKind {
  const text = textsOf(err);
  if (UNKNOWN_ISSUER.test(text)) return 'stale-bundle';
  if (CLIENT_CERT_REFUSED.test(text)) return 'refused';
  if (isSigilError(err, 'ERR_PERMISSION_DENIED') || isSigilError(err, 'ERR_UNAUTHENTICATED'))
    return 'refused';
  if (isSigilError(err, 'ERR_RESOURCE_EXHAUSTED')) return 'rate-limited';
  const code = grpcCode(err);
  if (code === status.PERMISSION_DENIED || code === status.UNAUTHENTICATED) return 'refused';
  if (code === status.RESOURCE_EXHAUSTED) return 'rate-limited';
  return 'unavailable';
}

/** A short, single-line description of a failure for logs and health (grpc-js details when present). */
export function describeServerFailure(err: unknown): string {
  const details = (err as { details?: unknown } | null)?.details;
  if (typeof details === 'string' && details.length > 0) return details;
  return err instanceof Error ? err.message : String(err);
}

export interface TrustBundleSource {
  /** Where the agent keeps the bundle it last received. */
  readonly savedPath: string;
  /** That bundle's spiffe_sequence (0 when unset). */
  readonly sequence: number;
}

/** The one log line (and health reason) for a server we cannot verify: what is wrong and how to fix it. */
export function staleBundleMessage(source: TrustBundleSource): string {
  return (
    `the server's certificate is signed by a CA this agent's trust bundle (saved ${source.savedPath}, ` +
    `sequence ${source.sequence}) does not contain; the bundle is stale: get the current one with ` +
    '`sigil-server bundle show --format pem > bundle.pem` and restart the agent with ' +
    '--trust-bundle-path bundle.pem (it is merged with the saved one)'
  );
}
