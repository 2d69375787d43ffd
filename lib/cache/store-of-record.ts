import type { ApiKeyBackend } from '../backends/backend.interface.js';

/**
 * The backend behind every cache layer of `backend` (`CachedBackend`, `RedisCacheBackend`
 * and the two-tier provider expose theirs as `primary`): where a read sees a write the
 * moment it is made, before any invalidation message has arrived.
 */
export function storeOfRecord(backend: ApiKeyBackend): ApiKeyBackend {
  let store = backend;
  for (let depth = 0; depth < 8; depth++) {
    const primary = (store as { primary?: unknown }).primary;
    if (primary === null || typeof primary !== 'object' || typeof (primary as ApiKeyBackend).getByHash !== 'function') break;
    store = primary as ApiKeyBackend;
  }
  return store;
}
