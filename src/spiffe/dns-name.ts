// DNS names for X509-SVID DNS SANs. checkDnsName is the rule every minted SAN follows; an operator's
// input must also be lowercase, the one canonical form (DNS is case-insensitive, and a certificate
// carrying "Web.Example.org" surprises the clients that compare it byte for byte).
import { isIP } from 'node:net';
import { quote, SigilError } from './errors.js';

/** RFC 1035 limit on a whole DNS name and on one label. */
const MAX_DNS_NAME_CHARS = 253;
const MAX_DNS_LABEL_CHARS = 63;

/**
 * Checks a DNS SAN: RFC 1123 labels (letters, digits, inner "-"; 1-63 chars; 253 in all), with an
 * optional `*.` wildcard as the whole leftmost label, and not an IP address (an IP in a DNS SAN is
 * never matched as one). Throws ERR_INPUT_INVALID naming the bad name.
 */
export function checkDnsName(name: string, field = 'dns_names'): void {
  const fail = (rule: string) =>
    new SigilError('ERR_INPUT_INVALID', `${field}: ${quote(name)} is not a valid DNS name: ${rule}`, {
      field,
      reason: 'dns-name',
    });
  if (typeof name !== 'string' || name === '') throw fail('it is empty');
  if (name.length > MAX_DNS_NAME_CHARS) throw fail(`it is longer than ${MAX_DNS_NAME_CHARS} characters`);
  if (isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0) {
    throw fail('it is an IP address (Sigil issues DNS SANs only; name the host instead)');
  }
  const labels = name.split('.');
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label === '*' && i === 0 && labels.length > 1) continue;
    if (label === '') throw fail('it has an empty label (leading, trailing or double ".")');
    if (label.includes('*')) throw fail('"*" is allowed only as the whole leftmost label ("*.example.org")');
    if (label.length > MAX_DNS_LABEL_CHARS) throw fail(`label ${quote(label)} is longer than 63 characters`);
    if (!/^[A-Za-z0-9-]+$/.test(label))
      throw fail(`label ${quote(label)} may contain only letters, digits and "-"`);
    if (label.startsWith('-') || label.endsWith('-'))
      throw fail(`label ${quote(label)} starts or ends with "-"`);
  }
}

/** checkDnsName, and lowercase: what the admin API and CLI accept from an operator. */
export function checkOperatorDnsName(name: string, field = 'dns_names'): void {
  checkDnsName(name, field);
  if (name !== name.toLowerCase()) {
    throw new SigilError(
      'ERR_INPUT_INVALID',
      `${field}: ${quote(name)} is not lowercase; DNS names are case-insensitive, write it as ${quote(name.toLowerCase())}`,
      { field, reason: 'dns-name-case' },
    );
  }
}
