// The peers of `npm run bench:proxy` without running them: --peers parsing, and the promises their
// configs make that the figures depend on (one worker, no access logs, keep-alive on every hop, mTLS
// with the SVID files, no port but the drawn ones). Running the pairs is the bench's job.
import { describe, expect, it } from 'vitest';
import {
  caddyInboundConfig,
  caddyOutboundConfig,
  nginxInboundConfig,
  nginxOutboundConfig,
} from '../../bench/proxy-peer-configs.js';
import { parsePeers } from '../../bench/proxy-peers.js';
import type { PairPorts, SvidFiles } from '../../bench/proxy-setup.js';

const ports: PairPorts = {
  outHttp: 20001,
  outTcp: 20002,
  outH2: 20003,
  inHttp: 20004,
  inTcp: 20005,
  inH2: 20006,
};
const app = { http: 20007, h2c: 20008 };
const svid: SvidFiles = {
  dir: '/tmp/svid',
  svidPem: '/tmp/svid/svid.0.pem',
  keyPem: '/tmp/svid/svid.0.key',
  bundlePem: '/tmp/svid/bundle.0.pem',
  haproxyPem: '/tmp/svid/haproxy.pem',
  spiffeId: 'spiffe://example.org/bench/client-sidecar',
};
const DRAWN = new Set([...Object.values(ports), ...Object.values(app)]);

/** Every port a config names after a colon ("127.0.0.1:PORT", "https://:PORT"). */
function portsIn(config: string): number[] {
  return [...config.matchAll(/:(\d{2,5})\b/g)].map((m) => Number(m[1]));
}

describe('parsePeers', () => {
  it('defaults to nginx and Caddy besides HAProxy, which always runs', () => {
    expect(parsePeers(undefined)).toEqual(['nginx', 'caddy']);
    expect(parsePeers('haproxy')).toEqual([]);
    expect(parsePeers('caddy, haproxy,caddy')).toEqual(['caddy']);
  });

  it('refuses an unknown peer, naming the known ones', () => {
    expect(() => parsePeers('nginx,envoy')).toThrow(
      '--peers: unknown peer envoy (known: haproxy, nginx, caddy)',
    );
  });
});

describe('nginx pair', () => {
  const out = nginxOutboundConfig({ dir: '/tmp/out' }, ports, svid);
  const inb = nginxInboundConfig({ dir: '/tmp/in' }, ports, app, svid);

  it('runs one process without access logs, files under its own dir', () => {
    for (const config of [out, inb]) {
      expect(config).toContain('master_process off;');
      expect(config).toContain('worker_processes 1;');
      expect(config).toContain('access_log off;');
      expect(config).not.toMatch(/\/var\//);
    }
  });

  it('keeps every HTTP hop alive and speaks mTLS with the SVID files', () => {
    for (const config of [out, inb]) {
      expect(config).toMatch(/keepalive \d+;/);
      expect(config).toContain('proxy_http_version 1.1;');
      expect(config).toContain('proxy_set_header Connection "";');
    }
    expect(out).toContain(`proxy_pass https://in_http;`);
    expect(out.match(/proxy_ssl_certificate \/tmp\/svid\/svid\.0\.pem;/g)).toHaveLength(3);
    expect(inb.match(/ssl_verify_client on;/g)).toHaveLength(3);
    expect(inb.match(/ssl_client_certificate \/tmp\/svid\/bundle\.0\.pem;/g)).toHaveLength(3);
  });

  it('binds and dials only the drawn ports', () => {
    for (const port of [...portsIn(out), ...portsIn(inb)]) expect(DRAWN).toContain(port);
  });
});

describe('Caddy pair', () => {
  const out = caddyOutboundConfig({ dir: '/tmp/out' }, ports, svid);
  const inb = caddyInboundConfig({ dir: '/tmp/in' }, ports, app, svid, svid.spiffeId);

  it('binds nothing of its own (no admin endpoint, no automatic HTTPS) and logs errors only', () => {
    for (const config of [out, inb]) {
      expect(config).toContain('admin off');
      expect(config).toContain('auto_https off');
      expect(config).toContain('level ERROR');
      for (const port of portsIn(config)) expect(DRAWN).toContain(port);
    }
  });

  it('proxies whatever the Host header says: no site host, which would answer other hosts with an empty 200', () => {
    expect(out).toContain(`http://:${ports.outHttp} {`);
    expect(inb).toContain(`https://:${ports.inHttp} {`);
  });

  it('keeps HTTP/1.1 alive on both hops, with a pool larger than the load', () => {
    for (const config of [out, inb]) {
      expect(config).toContain('versions 1.1');
      expect(config).toContain('keepalive_idle_conns_per_host 128');
    }
  });

  it('requires a client SVID chaining to the bundle, and refuses any other SPIFFE ID', () => {
    expect(out).toContain('tls_client_auth /tmp/svid/svid.0.pem /tmp/svid/svid.0.key');
    expect(inb).toContain('mode require_and_verify');
    expect(inb).toContain('trusted_ca_cert_file /tmp/svid/bundle.0.pem');
    expect(inb).toContain(`@stranger not vars {http.request.tls.client.san.uris.0} "${svid.spiffeId}"`);
    expect(inb).toContain('respond @stranger 403');
  });
});
