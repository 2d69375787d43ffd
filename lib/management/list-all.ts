import type { ApiKeyView } from '../api-key.interface.js';
import { ApiKeyValidationError, ListAllUnsupportedError } from '../api-key.errors.js';
import type { ApiKeyBackend, ApiKeyStatus, ListAllOptions } from '../backends/backend.interface.js';
import { API_KEY_STATUSES } from '../backends/key-status.js';
import { collectPage, pageLimit, pageStart } from './key-page.js';

/** Options of {@link ApiKeyService.listAllPage}. */
export interface ListAllPageOptions {
  /** `nextCursor` of the previous page. */
  cursor?: string | null;
  /** Page size, 1 to 1000. Default `50`. */
  limit?: number;
  /** Only this owner's keys. */
  ownerId?: string;
  /** Only keys of this environment; `null` for keys without one. */
  environment?: string | null;
  /** Only keys in this state now: `active`, `expired`, `revoked` or `disabled`. */
  status?: ApiKeyStatus;
}

/** One page of the listing across owners. No total: counting every key of every owner is the one thing it must not do. */
export interface ApiKeyListAllPage {
  items: ApiKeyView[];
  /** Pass back as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
}

/**
 * One page of every owner's keys, newest first, through the backend's optional
 * `listAll`; `ListAllUnsupportedError` when the backend has none.
 */
export async function listAllPage(backend: ApiKeyBackend, options: ListAllPageOptions = {}): Promise<ApiKeyListAllPage> {
  if (options == null || typeof options !== 'object') throw new ApiKeyValidationError('options', 'must be an object');
  const limit = pageLimit(options.limit);
  const query: ListAllOptions = { limit: limit + 1, now: new Date() };
  const after = pageStart(options.cursor);
  if (after !== undefined) query.after = after;
  if (options.ownerId !== undefined) {
    if (typeof options.ownerId !== 'string' || options.ownerId.length === 0) throw new ApiKeyValidationError('ownerId', 'must be a non-empty string');
    query.ownerId = options.ownerId;
  }
  if (options.environment !== undefined) {
    if (options.environment !== null && typeof options.environment !== 'string') {
      throw new ApiKeyValidationError('environment', 'must be a string or null');
    }
    query.environment = options.environment;
  }
  if (options.status !== undefined) {
    if (!API_KEY_STATUSES.includes(options.status)) throw new ApiKeyValidationError('status', `must be one of ${API_KEY_STATUSES.join(', ')}`);
    query.status = options.status;
  }
  // Checked after the input, so a bad request is a 400 on every backend.
  if (typeof backend.listAll !== 'function') throw new ListAllUnsupportedError();
  return collectPage(backend.listAll(query), limit);
}
