// EC keys and certificates made with the openssl CLI, for tests that need a certificate from outside
// Sigil's own CA (a fake Kubernetes API's serving cert, a look-alike CA, an upstream root): an
// independent implementation, so our parsers meet what real tools write.
import { execFileSync } from 'node:child_process';

export interface OpensslCertOptions {
  /** `-subj`, e.g. `/CN=api`. */
  readonly subject: string;
  readonly keyFile: string;
  /** The certificate (self-signed) or the request (ecCertRequest) is written here. */
  readonly outFile: string;
  /** Each one an `-addext` value, e.g. `subjectAltName=IP:127.0.0.1`. */
  readonly extensions?: readonly string[];
  /** Default P-256. */
  readonly curve?: 'P-256' | 'P-384';
  /** Default 1. */
  readonly days?: number;
}

function ecRequestArgs(options: OpensslCertOptions): string[] {
  return [
    '-newkey',
    'ec',
    '-pkeyopt',
    `ec_paramgen_curve:${options.curve ?? 'P-256'}`,
    '-nodes',
    '-subj',
    options.subject,
    ...(options.extensions ?? []).flatMap((ext) => ['-addext', ext]),
    '-keyout',
    options.keyFile,
    '-out',
    options.outFile,
  ];
}

/** A new EC key and a self-signed certificate for it; throws with openssl's stderr when it fails. */
export function selfSignedEcCert(options: OpensslCertOptions): void {
  openssl(['req', '-x509', '-days', String(options.days ?? 1), ...ecRequestArgs(options)]);
}

/** A new EC key and a certificate request (CSR) for it, for `openssl x509 -req` to sign. */
export function ecCertRequest(options: OpensslCertOptions): void {
  openssl(['req', '-new', ...ecRequestArgs(options)]);
}

function openssl(args: readonly string[]): void {
  // stderr piped, not shown: execFileSync puts it in the error it throws.
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
