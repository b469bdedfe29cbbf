// x509pop, server half: the node proves it holds the key of a certificate issued under a CA bundle the
// operator configured. The chain is checked first, then the agent signs a fresh nonce with the leaf
// key (protocol.ts). The agent ID is the leaf's SHA-1 fingerprint, as SPIRE's, so re-attesting with
// the same certificate gives the same ID.
import { randomBytes } from 'node:crypto';
import { isSigilError, SigilError } from '../../../spiffe/errors.js';
import { decodePemBlocks } from '../../../spiffe/pem.js';
import { makeSelector, type Selector } from '../../../spiffe/selector.js';
import { describeCertificate } from '../../../spiffe/x509-svid.js';
import { ConfigCheck, type ReadTextFile } from '../config-check.js';
import type { NodeAttestation, NodeAttestContext, NodeAttestorServer } from '../types.js';
import { loadNodeCertificate, type NodeCertificate, rootProblem, verifyNodeChain } from './chain.js';
import {
  decodePayload,
  encodeChallenge,
  isChallengeSignatureValid,
  NONCE_BYTES,
  signatureSchemeFor,
  X509POP_ATTESTOR,
} from './protocol.js';

/** Eight certificates of a few KiB each, base64 in JSON, fit comfortably. */
const MAX_PAYLOAD_BYTES = 64 * 1024;

export interface X509PopServerOptions {
  /** Source of the nonce. Defaults to node:crypto randomBytes. */
  readonly randomBytes?: (size: number) => Buffer;
  readonly readTextFile?: ReadTextFile;
}

/** Config: `{ ca_bundle_path }`, a PEM file of the root CAs node certificates must chain to. */
export function createX509PopServer(
  rawConfig: unknown,
  field = `node_attestors.${X509POP_ATTESTOR}`,
  options: X509PopServerOptions = {},
): NodeAttestorServer {
  const check = new ConfigCheck(field, options.readTextFile);
  const raw = check.mapping(field, rawConfig, ['ca_bundle_path']);
  const bundlePath = check.path('ca_bundle_path');
  const file = raw === null ? undefined : check.string(bundlePath, raw.ca_bundle_path, true);
  const pem = check.readFile(bundlePath, file);
  const roots = pem === undefined ? [] : loadRoots(check, bundlePath, file!, pem);
  check.finish();
  return new X509PopServer(Object.freeze(roots), options.randomBytes ?? randomBytes);
}

function loadRoots(check: ConfigCheck, path: string, file: string, pem: string): NodeCertificate[] {
  let ders: Buffer[];
  try {
    ders = decodePemBlocks(pem, 'CERTIFICATE', file);
  } catch (err) {
    check.problem(path, (err as Error).message);
    return [];
  }
  const roots: NodeCertificate[] = [];
  ders.forEach((der, i) => {
    let root: NodeCertificate;
    try {
      root = loadNodeCertificate(der);
    } catch (err) {
      check.problem(path, `${file}: certificate ${i} is not readable: ${(err as Error).message}`);
      return;
    }
    const problem = rootProblem(root);
    if (problem === undefined) roots.push(root);
    else check.problem(path, `${file}: certificate ${i} (${root.subject}) ${problem}`);
  });
  return roots;
}

class X509PopServer implements NodeAttestorServer {
  readonly name = X509POP_ATTESTOR;

  constructor(
    private readonly roots: readonly NodeCertificate[],
    private readonly random: (size: number) => Buffer,
  ) {}

  async attest(payload: Buffer, context: NodeAttestContext): Promise<NodeAttestation> {
    if (payload.length > MAX_PAYLOAD_BYTES) {
      throw refuse(`payload is ${payload.length} bytes (at most ${MAX_PAYLOAD_BYTES})`, 'size');
    }
    const chain = readChain(payload);
    let cas: NodeCertificate[];
    try {
      cas = verifyNodeChain(chain, this.roots, context.nowMs);
    } catch (err) {
      if (!isSigilError(err, 'ERR_X509_VERIFY_FAILED')) throw err;
      throw refuse(
        `certificate chain does not verify against the configured CA bundle: ${err.message}`,
        'chain',
        err,
      );
    }
    const leaf = chain[0]!;
    let scheme: ReturnType<typeof signatureSchemeFor>;
    try {
      scheme = signatureSchemeFor(leaf.node.publicKey);
    } catch (err) {
      throw refuse(`leaf key is not supported: ${(err as Error).message}`, 'key', err);
    }

    const challenge = { nonce: this.random(NONCE_BYTES), scheme };
    context.signal.throwIfAborted();
    const signature = await context.challenge(encodeChallenge(challenge));
    if (!isChallengeSignatureValid(leaf.node.publicKey, challenge, signature)) {
      throw refuse('challenge signature is invalid', 'signature');
    }

    return Object.freeze({
      agentPath: `/sigil/agent/x509pop/${leaf.sha1Hex}`,
      selectors: Object.freeze(selectorsOf(leaf, cas)),
      // Possession of the key is proven afresh each time, so the same certificate may attest again.
      canReattest: true,
      aliases: Object.freeze([]),
    });
  }
}

function readChain(payload: Buffer): NodeCertificate[] {
  let ders: Buffer[];
  try {
    ders = decodePayload(payload);
  } catch (err) {
    if (!isSigilError(err, 'ERR_INPUT_INVALID')) throw err;
    throw refuse(`malformed payload: ${err.message.replace(/^x509pop: /, '')}`, 'payload', err);
  }
  return ders.map((der, i) => {
    try {
      return loadNodeCertificate(der);
    } catch (err) {
      const which = i === 0 ? 'leaf' : `certificate ${i}`;
      throw refuse(`malformed payload: ${which} is not a readable certificate`, 'payload', err);
    }
  });
}

/** In the spirit of SPIRE's x509pop selectors; `cas` is the verified path above the leaf, root last. */
function selectorsOf(leaf: NodeCertificate, cas: readonly NodeCertificate[]): Selector[] {
  const values = [
    ...leaf.commonNames.map((cn) => `subject:cn:${cn}`),
    ...cas.map((ca) => `ca:fingerprint:${ca.sha1Hex}`),
    ...leaf.dnsNames.map((name) => `san:dns:${name}`),
    `serialnumber:${describeCertificate(leaf.der).serialHex}`,
  ];
  return values.map((value) => {
    try {
      return makeSelector(X509POP_ATTESTOR, value);
    } catch (err) {
      // A name with control characters or of absurd length: refuse rather than drop it silently.
      throw refuse(`certificate yields an unusable selector: ${(err as Error).message}`, 'selector', err);
    }
  });
}

function refuse(rule: string, reason: string, cause?: unknown): SigilError {
  return new SigilError('ERR_PERMISSION_DENIED', `x509pop: ${rule}`, { reason, cause });
}
