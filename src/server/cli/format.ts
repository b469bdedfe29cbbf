// Human-readable output for --output text. Stable on purpose (people grep it): "Label : value"
// blocks for single resources, as SPIRE's CLI prints entries, and aligned tables for lists.
// Secrets never pass through here; the one command that prints a key does so itself.
import { encodePem } from '../../spiffe/pem.js';

export type WireSelector = string | { readonly type: string; readonly value: string };

export interface WireEntry {
  readonly id: string;
  readonly spiffe_id: string;
  readonly parent_id: string;
  readonly selectors: readonly WireSelector[];
  readonly x509_svid_ttl?: number;
  readonly jwt_svid_ttl?: number;
  readonly dns_names?: readonly string[];
  readonly federates_with?: readonly string[];
  readonly admin?: boolean;
  readonly downstream?: boolean;
  readonly hint?: string;
  readonly expires_at?: number | null;
  readonly revision?: number;
  readonly created_at?: number;
}

export interface WireAgent {
  readonly spiffe_id: string;
  readonly attestation_type?: string;
  readonly serial?: string;
  readonly expires_at?: number;
  readonly selectors?: readonly WireSelector[];
  readonly banned?: boolean;
  readonly can_reattest?: boolean;
  readonly created_at?: number;
  readonly updated_at?: number;
}

/** Lines of `Label : value`, labels padded to one width; repeated values repeat the label. */
export function formatBlock(rows: ReadonlyArray<readonly [string, string | readonly string[]]>): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines: string[] = [];
  for (const [label, value] of rows) {
    for (const v of typeof value === 'string' ? [value] : value) lines.push(`${label.padEnd(width)} : ${v}`);
  }
  return `${lines.join('\n')}\n`;
}

export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

export function formatEntry(entry: WireEntry): string {
  const rows: Array<readonly [string, string | readonly string[]]> = [
    ['Entry ID', entry.id],
    ['SPIFFE ID', entry.spiffe_id],
    ['Parent ID', entry.parent_id],
    ['Revision', String(entry.revision ?? 0)],
    ['X509-SVID TTL', formatTtl(entry.x509_svid_ttl)],
    ['JWT-SVID TTL', formatTtl(entry.jwt_svid_ttl)],
    ['Expires at', formatTime(entry.expires_at)],
    ['Selector', entry.selectors.map(selectorText)],
  ];
  if (entry.dns_names?.length) rows.push(['DNS name', entry.dns_names]);
  if (entry.federates_with?.length) rows.push(['Federates with', entry.federates_with]);
  if (entry.admin) rows.push(['Admin', 'true']);
  if (entry.downstream) rows.push(['Downstream', 'true']);
  if (entry.hint) rows.push(['Hint', entry.hint]);
  return formatBlock(rows);
}

export function formatAgent(agent: WireAgent): string {
  return formatBlock([
    ['SPIFFE ID', agent.spiffe_id],
    ['Attestation type', agent.attestation_type ?? ''],
    ['Serial number', agent.serial ?? ''],
    ['Expires at', formatTime(agent.expires_at)],
    ['Banned', String(agent.banned ?? false)],
    ['Can re-attest', String(agent.can_reattest ?? false)],
    ['Selector', (agent.selectors ?? []).map(selectorText)],
  ]);
}

export function selectorText(selector: WireSelector): string {
  return typeof selector === 'string' ? selector : `${selector.type}:${selector.value}`;
}

/** Unix seconds as ISO 8601 UTC; null or absent means the thing never expires. */
export function formatTime(unixSeconds: number | null | undefined): string {
  if (unixSeconds === null || unixSeconds === undefined || unixSeconds === 0) return 'never';
  return new Date(unixSeconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** The API's TTL seconds; 0 (or absent) means the server's default applies. */
export function formatTtl(seconds: number | undefined): string {
  return seconds === undefined || seconds === 0 ? 'default' : `${seconds}s`;
}

/** The X.509 authorities of a SPIFFE bundle (JWKS keys with use "x509-svid") as PEM certificates. */
export function bundleToPem(bundle: unknown): string {
  const keys = (bundle as { keys?: Array<{ use?: string; x5c?: string[] }> } | null)?.keys ?? [];
  return keys
    .filter((k) => k.use === 'x509-svid' && Array.isArray(k.x5c) && k.x5c.length > 0)
    .map((k) => encodePem('CERTIFICATE', Buffer.from(k.x5c![0]!, 'base64')))
    .join('');
}
