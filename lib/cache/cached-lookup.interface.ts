import type { ApiKeyBackend } from '../backends/backend.interface.js';
import type { CachedApiKey } from './l1-cache.js';

/**
 * A backend that can answer from memory without a promise. `ApiKeyService` uses it on
 * the hot path: a hit skips the timeout race, the microtask hops and the copy of the
 * record, and hands the request the cached, frozen view.
 */
export interface CachedLookup {
  /**
   * The cached answer for a hash, synchronously: the key, `null` when the hash is
   * known not to exist, or `undefined` when only the primary can say. Never throws and
   * never does I/O.
   */
  peekByHash(keyHash: string): CachedApiKey | null | undefined;

  /**
   * Optional: drops this process's answer for a hash, after the store of record was
   * seen to hold a key the cache remembers as unknown (pepper rotation's last read).
   * Local only: the instance that changed the store tells the others.
   */
  forgetHash?(keyHash: string): void;
}

/** Whether `backend` offers {@link CachedLookup.peekByHash}. */
export function hasCachedLookup(backend: ApiKeyBackend): backend is ApiKeyBackend & CachedLookup {
  return typeof (backend as Partial<CachedLookup>).peekByHash === 'function';
}
