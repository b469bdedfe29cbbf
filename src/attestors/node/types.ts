// Node attestation plugins: a server half that judges evidence and an agent half that produces it.
// Challenge-response attestors (x509pop) converse through `challenge`; single-shot ones never call it.
// A plugin knows nothing of gRPC or the datastore: what it needs is passed in as narrow interfaces.

import type { TrustDomain } from '../../spiffe/id.js';
import type { Selector } from '../../spiffe/selector.js';

export interface NodeAttestation {
  /** Path of the agent's SPIFFE ID in the trust domain, e.g. `/sigil/agent/join_token/<token>`. */
  readonly agentPath: string;
  /** Node selectors (type = attestor name), matched against node entries to give the agent aliases. */
  readonly selectors: readonly Selector[];
  /** Whether the agent may attest again with the same evidence after its SVID expired. */
  readonly canReattest: boolean;
  /** Extra IDs the agent holds from the start (a join token's alias). Full SPIFFE IDs. */
  readonly aliases: readonly string[];
  /**
   * A single-use join token this attestation spends. The attestor only checks it; the server spends
   * it in the same transaction that records the node, after everything else passed, so a refused
   * attestation leaves it usable.
   */
  readonly joinToken?: string;
}

export interface NodeAttestContext {
  readonly trustDomain: TrustDomain;
  readonly nowMs: number;
  readonly signal: AbortSignal;
  /** Sends a challenge to the agent and resolves with its response. */
  challenge(challenge: Buffer): Promise<Buffer>;
}

export interface NodeAttestorServer {
  readonly name: string;
  /**
   * Judges the agent's evidence, without side effects: whatever must change on success is returned
   * (see joinToken) for the server to commit. Any refusal throws SigilError ERR_PERMISSION_DENIED
   * with a message that says what was wrong without echoing secrets (never the token itself).
   */
  attest(payload: Buffer, context: NodeAttestContext): Promise<NodeAttestation>;
}

export interface NodeAttestorAgent {
  readonly name: string;
  /** The evidence sent with the first message. */
  payload(): Promise<Buffer>;
  /** Answers a server challenge (x509pop signs a nonce); single-shot attestors throw. */
  respond(challenge: Buffer): Promise<Buffer>;
}

/** What the join_token server half needs from the datastore. */
export interface JoinTokenReader {
  /** The unspent token; ERR_TOKEN_NOT_FOUND / ERR_TOKEN_EXPIRED otherwise. Does not spend it. */
  fetchJoinToken(token: string, nowMs: number): Promise<{ readonly spiffeId: string | null }>;
}

export interface NodeAttestorServerDeps {
  readonly joinTokens: JoinTokenReader;
}
