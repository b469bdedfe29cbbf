// Keeps an AuthorizedEntries index in step with a DataStore: every entry and node write made through
// the returned store updates the index once the store has acknowledged it. Writes are serialized
// here so the index sees them in revision order and a delete's revision (the store returns only the
// deleted entry) can be read right after it. Writes that bypass this decorator are invisible to the
// index; the server must hand out only the decorated store.
import type { AttestedNode, BatchResult, DataStore, RegistrationEntry } from '../datastore/index.js';
import type { AuthorizedEntries } from './authorized-entries.js';

export function observeEntryWrites(store: DataStore, index: AuthorizedEntries): DataStore {
  let tail: Promise<unknown> = Promise.resolve();
  /** Runs `write` after every earlier write settled; a failed write does not stop the queue. */
  const exclusive = <T>(write: () => Promise<T>): Promise<T> => {
    const run = tail.then(write, write);
    // The caller gets the failure from `run`; the queue only needs to know it settled.
    tail = run.catch(() => undefined);
    return run;
  };

  // All deletions of one call commit in one transaction, so none of them is visible on its own and
  // recording them all at the revision the store ends at is exact.
  const deleteAndObserve = async (ids: readonly string[]): Promise<BatchResult<RegistrationEntry>[]> => {
    const results = await store.deleteEntries(ids);
    if (results.some((r) => r.ok)) {
      const revision = await store.currentRevision();
      for (const result of results) if (result.ok) index.entryDeleted(result.value, revision);
    }
    return results;
  };

  const observeNode = (node: AttestedNode): AttestedNode => {
    if (node.banned) index.agentRemoved(node.spiffeId);
    else {
      // Attestation aliases are not in the node record; a record update must not drop them.
      const aliases = index.attestationAliasesOf(node.spiffeId);
      index.agentUpserted({ spiffeId: node.spiffeId, selectors: node.selectors, aliases });
    }
    return node;
  };

  return {
    createEntry: (entry) =>
      exclusive(async () => {
        const created = await store.createEntry(entry);
        index.entryUpserted(created);
        return created;
      }),
    createEntries: (entries) =>
      exclusive(async () => {
        const results = await store.createEntries(entries);
        for (const result of results) if (result.ok) index.entryUpserted(result.value);
        return results;
      }),
    updateEntry: (id, update) =>
      exclusive(async () => {
        const updated = await store.updateEntry(id, update);
        index.entryUpserted(updated);
        return updated;
      }),
    deleteEntry: (id) =>
      exclusive(async () => {
        const deleted = await store.deleteEntry(id);
        index.entryDeleted(deleted, await store.currentRevision());
        return deleted;
      }),
    deleteEntries: (ids) => exclusive(() => deleteAndObserve(ids)),
    // Through deleteEntries rather than the store's prune, so each removal reaches the index.
    pruneEntries: (nowMs) =>
      exclusive(async () => {
        const expired = index.expiredEntryIds(nowMs);
        if (expired.length === 0) return 0;
        return (await deleteAndObserve(expired)).filter((r) => r.ok).length;
      }),
    upsertNode: (node) => exclusive(async () => observeNode(await store.upsertNode(node))),
    deleteNode: (spiffeId) =>
      exclusive(async () => {
        const deleted = await store.deleteNode(spiffeId);
        index.agentRemoved(spiffeId);
        return deleted;
      }),
    banNode: (spiffeId, nowMs) =>
      exclusive(async () => {
        const banned = await store.banNode(spiffeId, nowMs);
        index.agentRemoved(spiffeId);
        return banned;
      }),
    fetchEntry: (id) => store.fetchEntry(id),
    listEntries: (filter, page) => store.listEntries(filter, page),
    countEntries: () => store.countEntries(),
    currentRevision: () => store.currentRevision(),
    fetchNode: (spiffeId) => store.fetchNode(spiffeId),
    listNodes: (page) => store.listNodes(page),
    createJoinToken: (token) => store.createJoinToken(token),
    fetchJoinToken: (token, nowMs) => store.fetchJoinToken(token, nowMs),
    // Alias entries first, then the node: the agent's aliases exist when its view is rebuilt.
    commitAttestation: (commit) =>
      exclusive(async () => {
        const committed = await store.commitAttestation(commit);
        for (const entry of committed.createdEntries) index.entryUpserted(entry);
        observeNode(committed.node);
        return committed;
      }),
    listJoinTokens: () => store.listJoinTokens(),
    pruneJoinTokens: (nowMs) => store.pruneJoinTokens(nowMs),
    putBundle: (bundle) => store.putBundle(bundle),
    fetchBundle: (trustDomain) => store.fetchBundle(trustDomain),
    listBundles: () => store.listBundles(),
    deleteBundle: (trustDomain) => store.deleteBundle(trustDomain),
    loadJournal: () => store.loadJournal(),
    saveJournal: (data, expectedVersion) => store.saveJournal(data, expectedVersion),
    close: () => store.close(),
  };
}
