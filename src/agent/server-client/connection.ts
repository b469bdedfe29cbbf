// The agent's connection to sigil-server: gRPC over TLS, authenticating the server against the bundle
// we hold by its SPIFFE ID (spiffe://<td>/sigil/server) AND the server marker only the CA puts on the
// server's own SVID (a URI SAN alone could come from a mis-issued workload SVID), and ourselves with
// the agent SVID once we have one. TLS material is live (TlsMaterial): a renewed SVID or new bundle applies to new
// connections without rebuilding the client. With several server addresses we move to the next one
// when a call fails as unavailable.
import type { PeerCertificate } from 'node:tls';
import {
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  credentials,
  experimental,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  AgentApiClient,
  type AttestRequest,
  type AttestResponse,
  type FetchBundlesResponse,
  type MintJwtSvidResponse,
  type SvidResult,
  type SyncEntriesRequest,
  type SyncEntriesResponse,
} from '../../../proto/agent-api.js';
import { SigilError } from '../../spiffe/errors.js';
import type { TrustDomain } from '../../spiffe/id.js';
import { serverCertificateProblem } from '../../spiffe/sigil-ids.js';
import { TlsMaterial } from '../../spiffe/tls-material.js';
import { cleanResolutionNote } from './grpc-errors.js';

/** Unary calls give up after this long; streams have no deadline. */
const CALL_DEADLINE_MS = 30_000;

type AgentApi = Client & Record<string, (...args: unknown[]) => unknown>;

/** Options of both clients (attestation, and mTLS once attested). */
const CLIENT_OPTIONS = {
  // TLS SNI name sent to the server. Servers are addressed by IP as often as by name, and SNI may
  // not carry an IP (RFC 6066); the server is authenticated by its SPIFFE ID, never by this name.
  'grpc.ssl_target_name_override': 'sigil-server',
  interceptors: [cleanResolutionNote],
};

export interface ServerConnectionOptions {
  readonly addresses: readonly string[];
  readonly trustDomain: TrustDomain;
  /** Skip server certificate verification (first contact without a trust bundle): demos only. */
  readonly insecureBootstrap?: boolean;
  readonly nowMs: () => number;
  /** Where a refused server certificate is reported (a security event: something posed as the server). */
  readonly logger: Pick<Logger, 'error'>;
}

export class ServerConnection {
  /** CA = our bundle; identity = the agent SVID (set after attestation). */
  readonly material = new TlsMaterial();
  private addressIndex = 0;
  private mtlsClient: AgentApi | null = null;
  private hasIdentity = false;
  private reconnects = 0;

  constructor(private readonly options: ServerConnectionOptions) {}

  get address(): string {
    return this.options.addresses[this.addressIndex % this.options.addresses.length]!;
  }

  /**
   * Counts the channels we closed on purpose (reconnect, failover). A stream that ends or is
   * cancelled while this changed was ended by us and may reconnect at once; any other end is the
   * server's doing and is backed off, so a server that ends every stream cannot cause a hot loop.
   */
  get generation(): number {
    return this.reconnects;
  }

  /** After a failure classed as unavailable: the next call goes to the next server. */
  failover(): void {
    if (this.options.addresses.length < 2) return;
    this.addressIndex++;
    this.reconnect();
  }

  /** Closes the channel on purpose (a renewed SVID must be presented on a new connection). */
  reconnect(): void {
    this.reconnects++;
    this.close();
  }

  setBundlePem(pem: string): void {
    this.material.setCa(pem);
  }

  setIdentity(certificatePem: string, privateKeyPem: string): void {
    this.material.setIdentity({
      certificate: Buffer.from(certificatePem),
      privateKey: Buffer.from(privateKeyPem),
    });
    this.hasIdentity = true;
  }

  /** Opens the Attest stream; `bootstrap` true when we hold no bundle yet and were told to trust on first use. */
  attestStream(bootstrap: boolean): {
    stream: ClientDuplexStream<AttestRequest, AttestResponse>;
    close(): void;
  } {
    const creds =
      bootstrap && this.options.insecureBootstrap
        ? credentials.createSsl(null, null, null, {
            rejectUnauthorized: false,
            checkServerIdentity: () => undefined,
          })
        : experimental.createCertificateProviderChannelCredentials(this.material, null, {
            checkServerIdentity: this.checkServerIdentity,
          });
    const client = new AgentApiClient(this.address, creds, CLIENT_OPTIONS) as unknown as AgentApi;
    const stream = (client.Attest as () => ClientDuplexStream<AttestRequest, AttestResponse>).call(client);
    return { stream, close: () => client.close() };
  }

  renewAgentSvid(csr: Buffer): Promise<{ svidChain: Buffer[] }> {
    return this.unary('RenewAgentSvid', { csr });
  }

  signX509Svids(requests: readonly { entryId: string; csr: Buffer }[]): Promise<{ results: SvidResult[] }> {
    return this.unary('SignX509Svids', { requests });
  }

  mintJwtSvid(entryId: string, audience: readonly string[]): Promise<MintJwtSvidResponse> {
    return this.unary('MintJwtSvid', { entryId, audience });
  }

  fetchBundles(): Promise<FetchBundlesResponse> {
    return this.unary('FetchBundles', {});
  }

  syncEntries(request: SyncEntriesRequest): ClientReadableStream<SyncEntriesResponse> {
    const client = this.client();
    return (
      client.SyncEntries as (r: SyncEntriesRequest, m: Metadata) => ClientReadableStream<SyncEntriesResponse>
    ).call(client, request, new Metadata());
  }

  close(): void {
    this.mtlsClient?.close();
    this.mtlsClient = null;
  }

  private client(): AgentApi {
    if (!this.hasIdentity)
      throw new SigilError('ERR_UNAUTHENTICATED', 'the agent has no SVID yet: attest first');
    this.mtlsClient ??= new AgentApiClient(
      this.address,
      experimental.createCertificateProviderChannelCredentials(this.material, this.material, {
        checkServerIdentity: this.checkServerIdentity,
      }),
      CLIENT_OPTIONS,
    ) as unknown as AgentApi;
    return this.mtlsClient;
  }

  private unary<Res>(method: string, request: unknown): Promise<Res> {
    const client = this.client();
    return new Promise((resolve, reject) => {
      (
        client[method] as (
          r: unknown,
          m: Metadata,
          o: object,
          cb: (e: ServiceError | null, r: Res) => void,
        ) => void
      ).call(
        client,
        request,
        new Metadata(),
        { deadline: this.options.nowMs() + CALL_DEADLINE_MS },
        (err, response) => {
          if (err) {
            if (err.code === status.UNAVAILABLE) this.failover();
            reject(err);
          } else resolve(response);
        },
      );
    });
  }

  /**
   * Runs after TLS verified the chain against our bundle: the server proves it is
   * spiffe://<td>/sigil/server and carries the server marker; hostnames play no part.
   */
  private readonly checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
    const problem = serverCertificateProblem(cert.raw, this.options.trustDomain);
    if (problem === undefined) return undefined;
    this.options.logger.error(
      { server: this.address, reason: problem },
      'Refused the server: it is not the Sigil server of our trust domain',
    );
    return new SigilError('ERR_PERMISSION_DENIED', `server ${this.address} refused: ${problem}`, {
      reason: 'server-identity',
    });
  };
}
