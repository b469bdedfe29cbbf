// Malformed requests to the other admin resources (join tokens, agents, bundles, minting, routes) get
// a 4xx naming the problem and leave the store exactly as it was.
import 'reflect-metadata';
import { createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { parseSpiffeId, parseTrustDomain } from '../../../spiffe/id.js';
import { generateKey } from '../../../spiffe/keys.js';
import { encodePem } from '../../../spiffe/pem.js';
import { createCaCertificate } from '../../../spiffe/x509-authority.js';
import { mintX509Svid, prepareIssuer } from '../../../spiffe/x509-svid.js';
import { type Case, describeBadInput, TD } from './bad-input.test-support.js';

const NOW = Date.now();

/** A workload SVID (cA=false): not something a trust bundle may hold. */
async function leafPem(): Promise<string> {
  const key = generateKey('ec-p256');
  const caDer = await createCaCertificate({
    trustDomain: parseTrustDomain('other.org'),
    key,
    notBeforeMs: NOW - 60_000,
    notAfterMs: NOW + 86_400_000,
  });
  const leaf = mintX509Svid(
    {
      spiffeId: parseSpiffeId('spiffe://other.org/web'),
      publicKey: createPublicKey(generateKey('ec-p256')),
      notBeforeMs: NOW - 60_000,
      notAfterMs: NOW + 3_600_000,
    },
    prepareIssuer(caDer, key),
  );
  return encodePem('CERTIFICATE', leaf);
}

/** A self-signed cA=true certificate with the given key usages. */
async function caPem(usages: number): Promise<string> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: 'O=Other',
      notBefore: new Date(NOW - 60_000),
      notAfter: new Date(NOW + 86_400_000),
      keys: await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
        'sign',
        'verify',
      ]),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(usages, true),
      ],
    },
    webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1],
  );
  return cert.toString('pem');
}

/** A SPIFFE bundle with one JWT authority whose key ID is `kid`. */
function jwtBundle(kid: string) {
  const jwk = createPublicKey(generateKey('ec-p256')).export({ format: 'jwk' });
  return { keys: [{ ...jwk, use: 'jwt-svid', kid }] };
}

const cases: Case[] = [
  {
    name: 'join token with a TTL beyond 7 days',
    method: 'POST',
    url: '/v1/join-tokens',
    body: { ttl: '30d' },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /7-day maximum/,
  },
  {
    name: 'join token for a foreign alias',
    method: 'POST',
    url: '/v1/join-tokens',
    body: { spiffe_id: 'spiffe://other.org/node' },
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /must be a path in trust domain "example.org"/,
  },
  {
    name: 'agent show with a malformed ID',
    method: 'GET',
    url: `/v1/agents/${encodeURIComponent('spiffe://EXAMPLE/x')}`,
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /spiffe_id/,
  },
  {
    name: 'evict an unknown agent',
    method: 'DELETE',
    url: `/v1/agents/${encodeURIComponent(`${TD}/agent/none`)}`,
    status: 404,
    code: 'ERR_NODE_NOT_FOUND',
    message: /agent\/none/,
  },
  {
    name: 'bundle with an unknown format',
    method: 'GET',
    url: '/v1/bundle?format=der',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /format: must be one of spiffe, pem \(got "der"\)/,
  },
  {
    name: 'federated bundle that is not PEM',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { pem: 'hello' },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message: /no CERTIFICATE block/,
  },
  {
    name: 'federated bundle with broken base64',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { pem: '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n' },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message: /invalid base64/,
  },
  {
    name: 'federated bundle JSON without keys',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { bundle: { spiffe_sequence: 1 } },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message: /keys/,
  },
  {
    name: 'federated bundle for our own trust domain',
    method: 'PUT',
    url: '/v1/bundles/example.org',
    body: { bundle: { keys: [] } },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /own trust domain/,
  },
  {
    name: 'federated bundle with a bad trust domain',
    method: 'PUT',
    url: '/v1/bundles/Other.Org',
    body: { bundle: { keys: [] } },
    status: 400,
    code: 'ERR_TRUST_DOMAIN_INVALID',
    message: /trust_domain/,
  },
  {
    name: 'delete a federated bundle that does not exist',
    method: 'DELETE',
    url: '/v1/bundles/nowhere.org',
    status: 404,
    code: 'ERR_BUNDLE_NOT_FOUND',
    message: /nowhere\.org/,
  },
  {
    name: 'x509 mint for a trust-domain-only ID',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: TD },
    status: 400,
    code: 'ERR_SPIFFE_ID_INVALID',
    message: /must have a path/,
  },
  {
    name: 'x509 mint with a garbage CSR',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: `${TD}/web`, csr: 'not a csr' },
    status: 400,
    code: 'ERR_CSR_INVALID',
    message: /./,
  },
  {
    name: 'x509 mint with a bad TTL',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: `${TD}/web`, ttl: '1 hour' },
    status: 400,
    code: 'ERR_DURATION_INVALID',
    message: /body\.ttl: "1 hour" is not a duration/,
  },
  {
    name: 'jwt mint without audience',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: `${TD}/web` },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.audience: is required/,
  },
  {
    name: 'jwt mint with an empty audience',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: `${TD}/web`, audience: [] },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /body\.audience/,
  },
  {
    name: 'unknown route',
    method: 'GET',
    url: '/v1/entriez',
    status: 404,
    code: 'ERR_NOT_FOUND',
    message: /no route GET \/v1\/entriez/,
  },
  // ---- issue 9: lifetimes in whole seconds, a floor for SVIDs, audiences, bundles, query parameters
  {
    name: 'join token with a fractional TTL',
    method: 'POST',
    url: '/v1/join-tokens',
    body: { ttl: '90.5s' },
    status: 400,
    code: 'ERR_DURATION_INVALID',
    message: /^body\.ttl: "90\.5s" must be a whole number of seconds/,
  },
  {
    name: 'join token with a sub-second TTL',
    method: 'POST',
    url: '/v1/join-tokens',
    body: { ttl: '500ms' },
    status: 400,
    code: 'ERR_DURATION_INVALID',
    message: /^body\.ttl: "500ms" must be a whole number of seconds/,
  },
  {
    name: 'x509 mint with a TTL under the minimum',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: `${TD}/web`, ttl: '30s' },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^body\.ttl: "30s" is shorter than the server's minimum SVID lifetime of 1m \(min_svid_ttl\)/,
  },
  {
    name: 'x509 mint with a fractional TTL',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: `${TD}/web`, ttl: 3600.5 },
    status: 400,
    code: 'ERR_DURATION_INVALID',
    message: /^body\.ttl: "3600\.5" must be a whole number of seconds/,
  },
  {
    name: 'x509 mint with an uppercase DNS name',
    method: 'POST',
    url: '/v1/x509-svids',
    body: { spiffe_id: `${TD}/web`, dns_names: ['Web.example.org'] },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message:
      /^body\.dns_names\[0\]: "Web\.example\.org" is not lowercase; .* write it as "web\.example\.org"/,
  },
  {
    name: 'jwt mint with a TTL under the minimum',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: `${TD}/web`, audience: ['a'], ttl: 59 },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^body\.ttl: "59" is shorter than the server's minimum SVID lifetime of 1m/,
  },
  {
    name: 'jwt mint with an oversized audience',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: `${TD}/web`, audience: ['a'.repeat(2_000)] },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^body\.audience: an audience value may be at most 1024 bytes \(got 2000/,
  },
  {
    name: 'jwt mint with 17 audiences',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: `${TD}/web`, audience: Array.from({ length: 17 }, (_, i) => `aud${i}`) },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^body\.audience: at most 16 audience values are allowed \(got 17\)/,
  },
  {
    name: 'jwt mint with an audience carrying a terminal escape',
    method: 'POST',
    url: '/v1/jwt-svids',
    body: { spiffe_id: `${TD}/web`, audience: ['ok\u001b]0;pwned\u0007'] },
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^body\.audience: audience .* contains a control character U\+001B/,
  },
  {
    name: 'federated bundle holding a leaf certificate',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { pem: await leafPem() },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message:
      /^bundle for "other\.org": X\.509 authority 0: certificate .* is not a CA .*CA certificates only/,
  },
  {
    name: 'federated bundle holding a CA without keyCertSign',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { pem: await caPem(x509.KeyUsageFlags.digitalSignature) },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message: /^bundle for "other\.org": X\.509 authority 0: certificate .* lacks the keyCertSign key usage/,
  },
  {
    name: 'federated bundle with a control character in a key ID',
    method: 'PUT',
    url: '/v1/bundles/other.org',
    body: { bundle: jwtBundle('key\u001b[2J') },
    status: 400,
    code: 'ERR_BUNDLE_INVALID',
    message: /^bundle for "other\.org": JWT authority 0: key ID .* contains a control character U\+001B/,
  },
  {
    name: 'agent list with an unknown query parameter',
    method: 'GET',
    url: `/v1/agents?spiffe_id=${encodeURIComponent(`${TD}/sigil/agent/x`)}`,
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^querystring: unknown field "spiffe_id"/,
  },
  {
    name: 'bundle list with a query parameter',
    method: 'GET',
    url: '/v1/bundles?trust_domain=other.org',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^querystring: unknown field "trust_domain"/,
  },
  {
    name: 'authorities with a query parameter',
    method: 'GET',
    url: '/v1/authorities?kind=x509',
    status: 400,
    code: 'ERR_INPUT_INVALID',
    message: /^querystring: unknown field "kind"/,
  },
];

describeBadInput('admin API refuses bad input to other resources without changing the store', cases, 15);
