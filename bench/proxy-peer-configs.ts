// nginx and Caddy configured as mTLS sidecar pairs the way proxy-setup.ts configures HAProxy's: the
// outbound takes plaintext from the app and speaks mTLS with the client SVID to the inbound, which
// requires a client certificate chaining to the bundle and forwards plaintext to the app. Keep-alive
// on every hop, one worker, no access logs, nothing bound but the ports given (never 80/443/2019).
// Pure text: starting the processes is proxy-peers.ts's job.
import type { AppPorts, PairPorts, SvidFiles } from './proxy-setup.js';

/** Debian's libnginx-mod-stream: the stream module (TCP and h2 pipes) is not built into nginx there. */
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/**
 * Idle upstream connections each proxy keeps per upstream: above wrk's 50 connections, so a
 * saturated run never closes a kept-alive hop and pays a new mTLS handshake (Caddy's default is 32).
 */
const IDLE_UPSTREAM_CONNECTIONS = 128;
/** nginx closes a keep-alive connection after 1,000 requests by default; HAProxy and Sigil do not. */
const KEEPALIVE_REQUESTS = 1_000_000_000;

/** Where an nginx instance keeps its pid file and temp dirs: a dir its uid may write. */
export interface NginxFiles {
  readonly dir: string;
}

function nginxMain(files: NginxFiles, http: string, stream: string): string {
  // master_process off: one process does the work, so its /proc stat is all of the peer's CPU, as
  // HAProxy's single thread is. error_log goes to stderr, which the bench keeps for diagnosis.
  return `daemon off;
master_process off;
worker_processes 1;
pid ${files.dir}/nginx.pid;
error_log stderr error;
load_module ${NGINX_STREAM_MODULE};

events {
  worker_connections 4096;
}

http {
  access_log off;
  client_body_temp_path ${files.dir}/client_body;
  proxy_temp_path ${files.dir}/proxy;
  fastcgi_temp_path ${files.dir}/fastcgi;
  uwsgi_temp_path ${files.dir}/uwsgi;
  scgi_temp_path ${files.dir}/scgi;
  keepalive_timeout 60s;
  keepalive_requests ${KEEPALIVE_REQUESTS};
${http}}

stream {
${stream}}
`;
}

/** An upstream block with a pool of kept-alive connections. */
function nginxUpstream(name: string, port: number): string {
  return `  upstream ${name} {
    server 127.0.0.1:${port};
    keepalive ${IDLE_UPSTREAM_CONNECTIONS};
    keepalive_requests ${KEEPALIVE_REQUESTS};
    keepalive_timeout 60s;
  }
`;
}

/** HTTP/1.1 with keep-alive to the upstream, the Host passed through as HAProxy does. */
const NGINX_PROXY_HTTP = `      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;`;

/** Directives, one a line, at the indent of the block they go in. */
function nginxLines(indent: string, lines: readonly string[]): string {
  return lines.map((line) => `${indent}${line}\n`).join('');
}

/**
 * The client side's TLS towards the server sidecar. proxy_ssl_verify stays off: nginx verifies the
 * chain only together with the name (X509_check_host on DNS SANs, then the CN), and a SPIFFE SVID has
 * a URI SAN and no CN, so nginx cannot verify the server sidecar at all (nor match its SPIFFE ID).
 */
function nginxClientTls(svid: SvidFiles, indent: string): string {
  return nginxLines(indent, [
    `proxy_ssl_certificate ${svid.svidPem};`,
    `proxy_ssl_certificate_key ${svid.keyPem};`,
    `proxy_ssl_trusted_certificate ${svid.bundlePem};`,
    'proxy_ssl_verify off;',
    'proxy_ssl_protocols TLSv1.2 TLSv1.3;',
    'proxy_ssl_session_reuse on;',
  ]);
}

/**
 * The server side's TLS: a client certificate is required and verified against the bundle (depth 3:
 * leaf, an intermediate, the root). nginx has no variable for a URI SAN, so it cannot check the
 * client's SPIFFE ID (HAProxy 2.6 cannot either).
 */
function nginxServerTls(svid: SvidFiles, indent: string): string {
  return nginxLines(indent, [
    `ssl_certificate ${svid.svidPem};`,
    `ssl_certificate_key ${svid.keyPem};`,
    `ssl_client_certificate ${svid.bundlePem};`,
    'ssl_verify_client on;',
    'ssl_verify_depth 3;',
    'ssl_protocols TLSv1.2 TLSv1.3;',
  ]);
}

/** Client-side nginx: HTTP/1.1 L7 (http module), opaque TCP and the app's h2c (stream module). */
export function nginxOutboundConfig(files: NginxFiles, ports: PairPorts, svid: SvidFiles): string {
  const http = `${nginxUpstream('in_http', ports.inHttp)}
  server {
    listen 127.0.0.1:${ports.outHttp};
    location / {
      proxy_pass https://in_http;
${NGINX_PROXY_HTTP}
${nginxClientTls(svid, '      ')}    }
  }
`;
  const pipe = (listen: number, upstream: number) => `  server {
    listen 127.0.0.1:${listen};
    proxy_pass 127.0.0.1:${upstream};
    proxy_ssl on;
${nginxClientTls(svid, '    ')}  }
`;
  return nginxMain(files, http, pipe(ports.outTcp, ports.inTcp) + pipe(ports.outH2, ports.inH2));
}

/**
 * Server-side nginx. Like Sigil's inbound and HAProxy's, it removes a forged identity header and
 * tells the app who called (XFCC with the client leaf's SHA-1, as HAProxy's config does).
 */
export function nginxInboundConfig(
  files: NginxFiles,
  ports: PairPorts,
  app: AppPorts,
  svid: SvidFiles,
): string {
  const http = `${nginxUpstream('app_http', app.http)}
  server {
    listen 127.0.0.1:${ports.inHttp} ssl;
${nginxServerTls(svid, '    ')}    location / {
      proxy_pass http://app_http;
${NGINX_PROXY_HTTP}
      proxy_set_header X-Sigil-Peer-Id "";
      proxy_set_header X-Forwarded-Client-Cert "Hash=$ssl_client_fingerprint";
    }
  }
`;
  const pipe = (listen: number, upstream: number) => `  server {
    listen 127.0.0.1:${listen} ssl;
${nginxServerTls(svid, '    ')}    proxy_pass 127.0.0.1:${upstream};
  }
`;
  return nginxMain(files, http, pipe(ports.inTcp, app.http) + pipe(ports.inH2, app.h2c));
}

/**
 * Global options every Caddy instance takes: no admin endpoint (it would bind 2019), no automatic
 * HTTPS (it would bind 80 and try to obtain certificates), storage in the bench's dir, errors only.
 * HTTP/1.1 only on every listener, so the pair's hop is HTTP/1.1 with keep-alive as HAProxy's is
 * (Caddy would otherwise negotiate HTTP/2 between the sidecars).
 */
function caddyGlobal(dir: string, serverOptions = ''): string {
  return `{
  admin off
  auto_https off
  storage file_system ${dir}/storage
  log {
    level ERROR
  }
  servers {
    protocols h1
${serverOptions}  }
}
`;
}

/** reverse_proxy's HTTP/1.1 transport with a kept-alive pool larger than the load's concurrency. */
function caddyTransport(tls: string): string {
  return `    transport http {
      versions 1.1
      keepalive 60s
      keepalive_idle_conns ${IDLE_UPSTREAM_CONNECTIONS}
      keepalive_idle_conns_per_host ${IDLE_UPSTREAM_CONNECTIONS}
${tls}    }
`;
}

/** Where a Caddy instance keeps its storage: a dir its uid may write. */
export interface CaddyFiles {
  readonly dir: string;
}

/**
 * Client-side Caddy, HTTP/1.1 only (Debian's Caddy 2.6 has no layer4 module for TCP pipes). Go's TLS
 * verifies a server only by name, and an SVID has no DNS SAN, so Caddy cannot verify the server
 * sidecar (tls_insecure_skip_verify): it still presents the client SVID, which the inbound checks.
 * The site has no host: with one, Caddy matches the Host header against it and answers any other
 * Host itself with an empty 200, never proxying (the 1,000 req/s client sends "Host: bench").
 */
export function caddyOutboundConfig(files: CaddyFiles, ports: PairPorts, svid: SvidFiles): string {
  const tls = `      tls
      tls_client_auth ${svid.svidPem} ${svid.keyPem}
      tls_trusted_ca_certs ${svid.bundlePem}
      tls_insecure_skip_verify
`;
  return `${caddyGlobal(files.dir)}
http://:${ports.outHttp} {
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:${ports.inHttp} {
${caddyTransport(tls)}  }
}
`;
}

/**
 * Server-side Caddy. The site has no host: a host would make Caddy match SNI and Host against it,
 * and the outbound dials an IP, for which Go sends no SNI (bind keeps it on loopback). A client certificate chaining to the bundle is required, and, unlike HAProxy
 * and nginx, Caddy can match the client's SPIFFE ID (the URI SAN placeholder in a vars matcher):
 * any other caller gets 403, as from Sigil's policy. Forged identity header removed, XFCC set.
 */
export function caddyInboundConfig(
  files: CaddyFiles,
  ports: PairPorts,
  app: AppPorts,
  svid: SvidFiles,
  clientId: string,
): string {
  // Caddy turns strict_sni_host on with client auth (421 when Host differs from SNI), which guards
  // one site's client auth from requests fronted through another; there is one site and no SNI here.
  return `${caddyGlobal(files.dir, '    strict_sni_host insecure_off\n')}
https://:${ports.inHttp} {
  bind 127.0.0.1
  tls ${svid.svidPem} ${svid.keyPem} {
    client_auth {
      mode require_and_verify
      trusted_ca_cert_file ${svid.bundlePem}
    }
  }
  @stranger not vars {http.request.tls.client.san.uris.0} "${clientId}"
  respond @stranger 403
  request_header -X-Sigil-Peer-Id
  request_header X-Forwarded-Client-Cert "Hash={http.request.tls.client.fingerprint}"
  reverse_proxy 127.0.0.1:${app.http} {
${caddyTransport('')}  }
}
`;
}
