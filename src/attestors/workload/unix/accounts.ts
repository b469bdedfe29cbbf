// Default user and group name lookups for the unix attestor, read from /etc/passwd and /etc/group
// (no NSS: the agent must not block on LDAP in the attestation path). Injected, so tests and
// hosts with other account sources pass their own. Each file is parsed once and parsed again only
// when its inode, size or mtime changes: attestation runs on every Workload API call.
import { readFileSync, statSync } from 'node:fs';

export type NameLookup = (id: number) => Promise<string | undefined>;

/** Looks `uid` up in a passwd-format file (name:password:uid:...). */
export function passwdLookup(file = '/etc/passwd'): NameLookup {
  const table = cachedTable(file);
  return async (id) => table().get(id);
}

/** Looks `gid` up in a group-format file (name:password:gid:members). */
export function groupLookup(file = '/etc/group'): NameLookup {
  const table = cachedTable(file);
  return async (id) => table().get(id);
}

function cachedTable(file: string): () => ReadonlyMap<number, string> {
  let version = '';
  let table: ReadonlyMap<number, string> = new Map();
  return () => {
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(file);
    } catch {
      // No such file (minimal containers): ids simply have no name selector.
      return new Map();
    }
    const current = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (current !== version) {
      table = parseColonFile(readFileSync(file, 'utf8'));
      version = current;
    }
    return table;
  };
}

function parseColonFile(text: string): Map<number, string> {
  const byId = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    const id = Number(fields[2]);
    // The first line for an id wins, as getpwuid(3) returns the first match.
    if (fields.length >= 3 && fields[0] !== '' && Number.isInteger(id) && !byId.has(id))
      byId.set(id, fields[0]!);
  }
  return byId;
}
