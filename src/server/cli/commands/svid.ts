// `x509 mint` and `jwt mint`: SVIDs for operators and tests (POST /v1/x509-svids, /v1/jwt-svids).
// The private key reaches stdout only when asked for without --write, as openssl and SPIRE do;
// with --write it goes to a 0600 file that never exists with wider permissions, even briefly.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { quote } from '../../../spiffe/errors.js';
import { checkJwtAudience } from '../../../spiffe/jwt-svid.js';
import { PUBLIC_FILE_MODE, SECRET_FILE_MODE, writeFileAtomic } from '../../../spiffe/secret-file.js';
import { jsonBody, unexpectedResponse } from '../admin-client.js';
import { usageError } from '../args.js';
import { type CommandSpec, printRaw } from '../command.js';
import { formatTime } from '../format.js';
import { dnsNameFlags, ttlFlag, workloadIdFlag } from '../values.js';

/** Created only if missing; an existing directory keeps the mode its owner chose. */
const WRITE_DIR_MODE = 0o700;

interface X509Minted {
  readonly spiffe_id: string;
  readonly svid_pem: string;
  readonly key_pem?: string;
  readonly bundle_pem: string;
  readonly expires_at?: number;
}

const x509Mint: CommandSpec = {
  name: 'x509 mint',
  summary: 'Mint an X509-SVID with a fresh key; print it, or write svid.pem, svid.key and bundle.pem.',
  flags: {
    'spiffe-id': { type: 'string', placeholder: 'ID', description: 'SPIFFE ID of the SVID', required: true },
    ttl: { type: 'string', placeholder: 'DURATION', description: 'SVID lifetime', defaultText: '1h' },
    dns: { type: 'string', multiple: true, placeholder: 'NAME', description: 'DNS name SAN' },
    write: {
      type: 'string',
      placeholder: 'DIR',
      description: 'write files into DIR instead of printing them',
    },
  },
  async run(ctx, flags) {
    const body: Record<string, unknown> = {
      spiffe_id: workloadIdFlag('spiffe-id', flags.string('spiffe-id')!),
    };
    const ttl = ttlFlag('ttl', flags.string('ttl'));
    if (ttl !== undefined) body['ttl'] = ttl;
    if (flags.has('dns')) body['dns_names'] = dnsNameFlags('dns', flags.strings('dns'));
    const dir = flags.string('write');
    // Prepared before minting, so an unusable directory costs no SVID.
    if (dir !== undefined) await prepareDir(dir);
    const response = await ctx.client().request('POST', '/v1/x509-svids', { body });
    const minted = jsonBody<X509Minted>(response);
    if (dir === undefined) {
      if (ctx.output === 'json') printRaw(ctx, response);
      else {
        ctx.io.stdout.write(`X509-SVID:\n${minted.svid_pem}\nPrivate key:\n${minted.key_pem ?? ''}\n`);
        ctx.io.stdout.write(`Bundle:\n${minted.bundle_pem}`);
      }
      return 0;
    }
    await writeSvidFiles(dir, minted);
    if (ctx.output === 'json') {
      const { key_pem: _written, ...rest } = minted;
      ctx.io.stdout.write(`${JSON.stringify(rest)}\n`);
    } else {
      ctx.io.stdout.write(
        `Wrote svid.pem, svid.key and bundle.pem to ${dir} (${minted.spiffe_id}, expires ${formatTime(minted.expires_at)})\n`,
      );
    }
    return 0;
  },
};

async function prepareDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: WRITE_DIR_MODE });
  } catch (err) {
    throw usageError(
      `--write: cannot create ${quote(dir)}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      'write',
    );
  }
}

async function writeSvidFiles(dir: string, minted: X509Minted): Promise<void> {
  if (minted.key_pem === undefined) {
    throw unexpectedResponse('server returned no private key to write', '');
  }
  await writeFileAtomic(join(dir, 'svid.key'), minted.key_pem, SECRET_FILE_MODE);
  await writeFileAtomic(join(dir, 'svid.pem'), minted.svid_pem, PUBLIC_FILE_MODE);
  await writeFileAtomic(join(dir, 'bundle.pem'), minted.bundle_pem, PUBLIC_FILE_MODE);
}

const jwtMint: CommandSpec = {
  name: 'jwt mint',
  summary: 'Mint a JWT-SVID and print the token.',
  flags: {
    'spiffe-id': {
      type: 'string',
      placeholder: 'ID',
      description: 'SPIFFE ID of the SVID (the sub claim)',
      required: true,
    },
    audience: {
      type: 'string',
      multiple: true,
      placeholder: 'AUD',
      description: 'audience (aud claim)',
      required: true,
    },
    ttl: { type: 'string', placeholder: 'DURATION', description: 'token lifetime', defaultText: '5m' },
  },
  async run(ctx, flags) {
    const audience = flags.strings('audience');
    checkJwtAudience(audience, '--audience');
    const body: Record<string, unknown> = {
      spiffe_id: workloadIdFlag('spiffe-id', flags.string('spiffe-id')!),
      audience,
    };
    const ttl = ttlFlag('ttl', flags.string('ttl'));
    if (ttl !== undefined) body['ttl'] = ttl;
    const response = await ctx.client().request('POST', '/v1/jwt-svids', { body });
    // Text output is the bare token, so `TOKEN=$(sigil-server jwt mint …)` just works.
    if (ctx.output === 'json') printRaw(ctx, response);
    else ctx.io.stdout.write(`${jsonBody<{ token: string }>(response).token}\n`);
    return 0;
  },
};

export const svidCommands: readonly CommandSpec[] = [x509Mint, jwtMint];
