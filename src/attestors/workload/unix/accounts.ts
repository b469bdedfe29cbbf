// Default user and group name lookups for the unix attestor, read from /etc/passwd and /etc/group
// (no NSS: the agent must not block on LDAP in the attestation path). Injected, so tests and
// hosts with other account sources pass their own.
import { readFile } from 'node:fs/promises';

export type NameLookup = (id: number) => Promise<string | undefined>;

/** Looks `uid` up in a passwd-format file (name:password:uid:...). */
export function passwdLookup(file = '/etc/passwd'): NameLookup {
  return (id) => lookupColon(file, id);
}

/** Looks `gid` up in a group-format file (name:password:gid:members). */
export function groupLookup(file = '/etc/group'): NameLookup {
  return (id) => lookupColon(file, id);
}

async function lookupColon(file: string, id: number): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    // No such file (minimal containers): the id simply has no name selector.
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length >= 3 && fields[2] === String(id) && fields[0] !== '') return fields[0];
  }
  return undefined;
}
