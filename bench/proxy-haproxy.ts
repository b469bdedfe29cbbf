// The HAProxy mTLS sidecar pair of `npm run bench:proxy`, the reference every ratio divides by: its
// two configs (client side and server side, like Sigil's listeners, on files exported from the same
// SVIDs). proxy-setup.ts starts it (startHaproxy), as it starts the other moving parts.
import type { AppPorts, PairPorts, SvidFiles } from './proxy-setup.js';

const HAPROXY_COMMON = `global
  nbthread 1
  maxconn 4000
  ssl-server-verify required
  ssl-default-bind-options ssl-min-ver TLSv1.2
  ssl-default-server-options ssl-min-ver TLSv1.2

defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
`;

/**
 * The client-side HAProxy: plaintext from the app, mTLS to the server sidecar with the client SVID,
 * server verified against the bundle (`verify required`; HAProxy 2.6 cannot check a URI SAN).
 * HTTP mode with keep-alive for HTTP/1.1; tcp mode for opaque TCP and the app's h2c.
 */
export function haproxyOutboundConfig(ports: PairPorts, svid: SvidFiles): string {
  const tls = `ssl crt ${svid.haproxyPem} ca-file ${svid.bundlePem} verify required`;
  return `${HAPROXY_COMMON}
frontend out_http
  mode http
  bind 127.0.0.1:${ports.outHttp}
  default_backend up_http
backend up_http
  mode http
  server in 127.0.0.1:${ports.inHttp} ${tls}

frontend out_tcp
  mode tcp
  bind 127.0.0.1:${ports.outTcp}
  default_backend up_tcp
backend up_tcp
  mode tcp
  server in 127.0.0.1:${ports.inTcp} ${tls}

frontend out_h2
  mode tcp
  bind 127.0.0.1:${ports.outH2}
  default_backend up_h2
backend up_h2
  mode tcp
  server in 127.0.0.1:${ports.inH2} ${tls}
`;
}

/**
 * The server-side HAProxy: mTLS from the client sidecar (client certificate required and verified
 * against the bundle), plaintext to the app. Like Sigil's inbound it removes a forged identity header
 * and tells the app who called (XFCC with the client leaf's hash; 2.6 has no URI SAN fetch).
 */
export function haproxyInboundConfig(ports: PairPorts, app: AppPorts, svid: SvidFiles): string {
  const tls = `ssl crt ${svid.haproxyPem} ca-file ${svid.bundlePem} verify required`;
  return `${HAPROXY_COMMON}
frontend in_http
  mode http
  bind 127.0.0.1:${ports.inHttp} ${tls}
  http-request del-header x-sigil-peer-id
  http-request set-header x-forwarded-client-cert "Hash=%[ssl_c_sha1,hex]"
  default_backend app_http
backend app_http
  mode http
  server app 127.0.0.1:${app.http}

frontend in_tcp
  mode tcp
  bind 127.0.0.1:${ports.inTcp} ${tls}
  default_backend app_tcp
backend app_tcp
  mode tcp
  server app 127.0.0.1:${app.http}

frontend in_h2
  mode tcp
  bind 127.0.0.1:${ports.inH2} ${tls}
  default_backend app_h2c
backend app_h2c
  mode tcp
  server app 127.0.0.1:${app.h2c}
`;
}
