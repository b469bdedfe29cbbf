// The source IP address a connection or call is counted under, for the per-IP connection cap and
// the per-IP attestation rate: both must see the same address for the same client.
import net from 'node:net';

/** IPv4 clients on a dual-stack socket appear as ::ffff:a.b.c.d; they count as a.b.c.d. */
export function sourceIp(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** The source IP of a gRPC call: grpc-js gives its peer as `address:port`, IPv6 unbracketed. */
export function callSourceIp(call: { getPeer(): string }): string {
  const peer = call.getPeer();
  const colon = peer.lastIndexOf(':');
  return sourceIp(colon > 0 && /^\d+$/.test(peer.slice(colon + 1)) ? peer.slice(0, colon) : peer);
}
