// Entry values that parse but must still be refused (issue 9): an expiry already past, lifetimes
// in fractions of a second or under the minimum, DNS names that are IP addresses or not lowercase,
// control and bidi characters in any stored string, and list filters that are not valid IDs.
import { type Case, describeBadInput, entry, existingEntryUrl } from './bad-input.test-support.js';

const post = (name: string, patch: Record<string, unknown>, code: string, message: RegExp): Case => ({
  name,
  method: 'POST',
  url: '/v1/entries',
  body: entry(patch),
  status: 400,
  code,
  message,
});

const cases: Case[] = [
  post(
    'expires_at in the past',
    { expires_at: 1_000_000_000 },
    'ERR_INPUT_INVALID',
    /^body\.expires_at: 1000000000 \(2001-09-09T01:46:40\.000Z\) is not in the future/,
  ),
  post(
    'expires_at zero',
    { expires_at: 0 },
    'ERR_INPUT_INVALID',
    /^body\.expires_at: 0 .* is not in the future/,
  ),
  {
    name: 'update moving expires_at into the past',
    method: 'PATCH',
    url: existingEntryUrl,
    body: { expires_at: 1_600_000_000 },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^body\.expires_at: 1600000000 .* is not in the future/,
  },
  post(
    'x509_svid_ttl with a fraction of a second',
    { x509_svid_ttl: '90.5s' },
    'ERR_DURATION_INVALID',
    /^body\.x509_svid_ttl: "90\.5s" must be a whole number of seconds/,
  ),
  post(
    'jwt_svid_ttl in milliseconds',
    { jwt_svid_ttl: '1500ms' },
    'ERR_DURATION_INVALID',
    /^body\.jwt_svid_ttl: "1500ms" must be a whole number of seconds/,
  ),
  post(
    'x509_svid_ttl under the minimum',
    { x509_svid_ttl: 5 },
    'ERR_INPUT_INVALID',
    /^body\.x509_svid_ttl: "5" is shorter than the server's minimum SVID lifetime of 1m \(min_svid_ttl\)/,
  ),
  post(
    'jwt_svid_ttl under the minimum',
    { jwt_svid_ttl: '10s' },
    'ERR_INPUT_INVALID',
    /^body\.jwt_svid_ttl: "10s" is shorter than the server's minimum SVID lifetime of 1m/,
  ),
  post(
    'DNS name that is an IPv4 address',
    { dns_names: ['10.0.0.1'] },
    'ERR_INPUT_INVALID',
    /^body\.dns_names\[0\]: "10\.0\.0\.1" is not a valid DNS name: it is an IP address/,
  ),
  post(
    'DNS name that is an IPv6 address',
    { dns_names: ['web.example.org', '[fd00::1]'] },
    'ERR_INPUT_INVALID',
    /^body\.dns_names\[1\]: "\[fd00::1\]" is not a valid DNS name: it is an IP address/,
  ),
  post(
    'DNS name not lowercase',
    { dns_names: ['WEB.example.org'] },
    'ERR_INPUT_INVALID',
    /^body\.dns_names\[0\]: "WEB\.example\.org" is not lowercase; DNS names are case-insensitive, write it as "web\.example\.org"/,
  ),
  post(
    'DNS label starting with a hyphen',
    { dns_names: ['-web.example.org'] },
    'ERR_INPUT_INVALID',
    /label "-web" starts or ends with "-"/,
  ),
  post(
    'hint with a terminal escape',
    { hint: 'db\u001b[2J' },
    'ERR_INPUT_INVALID',
    /^body\.hint: "db\\u001b\[2J" contains a control character U\+001B at index 2/,
  ),
  post(
    'hint with a C1 control',
    { hint: 'db\u009b31m' },
    'ERR_INPUT_INVALID',
    /^body\.hint: .* contains a control character U\+009B/,
  ),
  post(
    'hint with a bidi override',
    { hint: 'admin\u202etxt.exe' },
    'ERR_INPUT_INVALID',
    /^body\.hint: .* contains a bidirectional control U\+202E/,
  ),
  post(
    'selector value with a bidi isolate',
    { selectors: ['unix:user:\u2066root'] },
    'ERR_SELECTOR_INVALID',
    /^body\.selectors\[0\]: selector .* value contains a bidirectional control U\+2066/,
  ),
  post(
    'selector value with a line separator',
    { selectors: [{ type: 'unix', value: 'uid:1\u20280' }] },
    'ERR_SELECTOR_INVALID',
    /value contains a line separator U\+2028/,
  ),
  {
    name: 'list filtered by an invalid SPIFFE ID',
    method: 'GET',
    url: '/v1/entries?spiffe_id=not-an-id',
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /^spiffe_id: SPIFFE ID "not-an-id" must start with "spiffe:\/\/"/,
  },
  {
    name: 'list filtered by an invalid parent ID',
    method: 'GET',
    url: `/v1/entries?parent_id=${encodeURIComponent('spiffe://Example.org/node')}`,
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /^parent_id: SPIFFE ID "spiffe:\/\/Example\.org\/node" trust domain may contain only lowercase/,
  },
  {
    name: 'list with an unknown filter',
    method: 'GET',
    url: '/v1/entries?spiffeid=spiffe://example.org/web',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^querystring: unknown field "spiffeid"/,
  },
  {
    name: 'show with a query parameter it does not take',
    method: 'GET',
    url: () => `${existingEntryUrl()}?format=pem`,
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^querystring: unknown field "format"/,
  },
];

describeBadInput('admin API refuses entry values that parse but cannot be right', cases, 20);
