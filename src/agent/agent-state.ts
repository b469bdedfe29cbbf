// What the agent keeps in its data dir so a restart does not attest again: its SVID chain and key
// (0600), the last trust bundle, whether its attestor allows attesting again, and a hash of the join
// token it last attested with (never the token), so a new token on the command line is recognised.
// Written atomically.

import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeSpiffeBundle, parseSpiffeBundle, type TrustBundle } from '../spiffe/bundle.js';
import type { TrustDomain } from '../spiffe/id.js';
import { decodePemBlocks, encodePem } from '../spiffe/pem.js';
import {
  ensurePrivateDir,
  PUBLIC_FILE_MODE,
  SECRET_FILE_MODE,
  writeFileAtomic,
} from '../spiffe/secret-file.js';
import { describeCertificate } from '../spiffe/x509-svid.js';

export interface AgentState {
  readonly spiffeId: string;
  readonly chain: readonly Buffer[];
  readonly key: KeyObject;
  readonly bundle: TrustBundle;
  readonly canReattest: boolean;
  readonly expiresAtMs: number;
  /** SHA-256 (hex) of the join token this SVID was attested with; null for other attestors. */
  readonly joinTokenSha256: string | null;
}

/** What agent.json records of a join token: its SHA-256, enough to tell a new token from the used one. */
export function joinTokenSha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Where the last bundle is kept (named in the stale-bundle advice). */
export function savedBundlePath(dataDir: string): string {
  return path.join(dataDir, FILES.bundle);
}

const FILES = {
  svid: 'agent-svid.pem',
  key: 'agent-svid.key',
  bundle: 'bundle.json',
  meta: 'agent.json',
} as const;

export async function saveAgentState(dataDir: string, state: AgentState): Promise<void> {
  ensurePrivateDir(dataDir);
  // Key first: a crash between the two leaves a key without a matching certificate, which the
  // loader refuses (attest again) rather than a certificate whose key is gone.
  await writeFileAtomic(
    path.join(dataDir, FILES.key),
    state.key.export({ format: 'pem', type: 'pkcs8' }) as string,
    SECRET_FILE_MODE,
  );
  await writeFileAtomic(
    path.join(dataDir, FILES.svid),
    state.chain.map((c) => encodePem('CERTIFICATE', c)).join(''),
    PUBLIC_FILE_MODE,
  );
  await saveBundle(dataDir, state.bundle);
  await writeFileAtomic(
    path.join(dataDir, FILES.meta),
    `${JSON.stringify({
      spiffe_id: state.spiffeId,
      can_reattest: state.canReattest,
      ...(state.joinTokenSha256 ? { join_token_sha256: state.joinTokenSha256 } : {}),
    })}\n`,
    PUBLIC_FILE_MODE,
  );
}

export async function saveBundle(dataDir: string, bundle: TrustBundle): Promise<void> {
  await writeFileAtomic(path.join(dataDir, FILES.bundle), encodeSpiffeBundle(bundle), PUBLIC_FILE_MODE);
}

/** The saved state, or null when there is none or it does not hang together (then we attest). */
export async function loadAgentState(dataDir: string, trustDomain: TrustDomain): Promise<AgentState | null> {
  try {
    const [svidPem, keyPem, bundleJson, metaJson] = await Promise.all(
      [FILES.svid, FILES.key, FILES.bundle, FILES.meta].map((f) => readFile(path.join(dataDir, f), 'utf8')),
    );
    const chain = decodePemBlocks(svidPem!, 'CERTIFICATE', FILES.svid);
    const key = createPrivateKey(keyPem!);
    const meta = JSON.parse(metaJson!) as {
      spiffe_id: string;
      can_reattest: boolean;
      join_token_sha256?: string;
    };
    const described = describeCertificate(chain[0]!);
    if (described.spiffeId !== meta.spiffe_id) return null;
    return {
      spiffeId: meta.spiffe_id,
      chain,
      key,
      bundle: parseSpiffeBundle(bundleJson!, trustDomain),
      canReattest: meta.can_reattest,
      expiresAtMs: described.notAfterMs,
      // Written by this version only; an older agent.json has none (any token then counts as new).
      joinTokenSha256: typeof meta.join_token_sha256 === 'string' ? meta.join_token_sha256 : null,
    };
  } catch {
    // Missing or unreadable: the caller attests and writes a fresh state.
    return null;
  }
}

/** A saved bundle from an earlier run, even when the SVID is gone (the server must still be trusted). */
export async function loadSavedBundle(
  dataDir: string,
  trustDomain: TrustDomain,
): Promise<TrustBundle | null> {
  try {
    return parseSpiffeBundle(await readFile(path.join(dataDir, FILES.bundle), 'utf8'), trustDomain);
  } catch {
    // No bundle saved yet: the configured trust bundle (or insecure bootstrap) applies.
    return null;
  }
}
