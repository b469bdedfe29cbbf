// The bundle the agent trusts the server with when it starts: the one saved by an earlier run united
// with the configured --trust-bundle-path. The union is what lets an operator heal an agent whose
// saved bundle went stale (the server moved to a CA it never saw): fetch the current bundle, pass it,
// restart. Authorities the server has since dropped leave again with the first bundle it pushes.
import { readFile } from 'node:fs/promises';
import {
  bundleFromPem,
  createTrustBundle,
  parseSpiffeBundle,
  type TrustBundle,
} from '../../spiffe/bundle.js';
import { SigilError } from '../../spiffe/errors.js';
import type { TrustDomain } from '../../spiffe/id.js';
import { loadSavedBundle } from '../agent-state.js';

export interface StartBundleConfig {
  readonly dataDir: string;
  readonly trustDomain: TrustDomain;
  readonly trustBundlePath: string | null;
  readonly insecureBootstrap: boolean;
}

/** Null only with insecure bootstrap and nothing saved: the server is then trusted on first contact. */
export async function loadStartBundle(config: StartBundleConfig): Promise<TrustBundle | null> {
  const saved = await loadSavedBundle(config.dataDir, config.trustDomain);
  const configured = config.trustBundlePath
    ? await readTrustBundle(config.trustBundlePath, config.trustDomain)
    : null;
  if (saved && configured) return unionBundles(saved, configured);
  const bundle = saved ?? configured;
  if (bundle || config.insecureBootstrap) return bundle;
  throw new SigilError(
    'ERR_CONFIG_INVALID',
    'no trust bundle: pass --trust-bundle-path (sigil-server bundle show > bundle.pem) or --insecure-bootstrap for demos',
  );
}

/** Every authority of `base` and of `extra` once; `base` keeps its sequence, hint and JWT key of a shared kid. */
export function unionBundles(base: TrustBundle, extra: TrustBundle): TrustBundle {
  const x509 = [...base.x509Authorities];
  for (const der of extra.x509Authorities) if (!x509.some((have) => have.equals(der))) x509.push(der);
  const kids = new Set(base.jwtAuthorities.map((a) => a.kid));
  return createTrustBundle({
    trustDomain: base.trustDomain,
    x509Authorities: x509,
    jwtAuthorities: [...base.jwtAuthorities, ...extra.jwtAuthorities.filter((a) => !kids.has(a.kid))],
    sequence: base.sequence,
    refreshHintS: base.refreshHintS,
  });
}

async function readTrustBundle(file: string, trustDomain: TrustDomain): Promise<TrustBundle> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `trust_bundle_path: cannot read ${file}: ${(err as Error).message}`,
    );
  }
  return text.trimStart().startsWith('{')
    ? parseSpiffeBundle(text, trustDomain)
    : bundleFromPem(trustDomain, text);
}
