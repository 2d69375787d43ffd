import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyNotFoundError } from '../api-key.errors.js';
import type { ApiKeyBackend } from '../backends/backend.interface.js';

/**
 * Revokes every key `root` issued, and theirs, breadth first, each key once (a cycle
 * of `issuedById` links cannot loop). `revoke` revokes one key and resolves to it as
 * stored; a key deleted since it was listed is skipped, but the keys it issued are not.
 */
export async function revokeIssuedKeys(
  backend: ApiKeyBackend,
  root: ApiKey,
  revoke: (key: ApiKey) => Promise<ApiKey>,
): Promise<void> {
  const seen = new Set<string>([root.id]);
  const queue: ApiKey[] = [root];
  while (queue.length > 0) {
    const issuer = queue.shift()!;
    // Listed in full before any write, so revoking does not disturb the listing.
    const children: ApiKey[] = [];
    for await (const child of issuedBy(backend, issuer)) {
      if (seen.has(child.id)) continue;
      seen.add(child.id);
      children.push(child);
    }
    for (const child of children) {
      try {
        queue.push(await revoke(child));
      } catch (error) {
        if (!(error instanceof ApiKeyNotFoundError)) throw error;
        queue.push(child);
      }
    }
  }
}

/**
 * The keys `issuer` issued: `listByIssuer` when the backend has it, else a scan of the
 * issuer's owner's keys, which hold every key a self-service key can mint.
 */
async function* issuedBy(backend: ApiKeyBackend, issuer: ApiKey): AsyncIterable<ApiKey> {
  if (backend.listByIssuer) {
    yield* backend.listByIssuer(issuer.id);
    return;
  }
  for await (const record of backend.listByOwner(issuer.ownerId)) {
    if (record.issuedById === issuer.id) yield record;
  }
}
