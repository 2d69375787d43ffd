import { toApiKeyView, type ApiKeyView } from '../api-key.interface.js';
import { ApiKeyValidationError, ListAllUnsupportedError } from '../api-key.errors.js';
import type { ApiKeyBackend, ApiKeyStatus, ListAllOptions } from '../backends/backend.interface.js';
import { decodeCursor, encodeCursor } from '../backends/cursor.js';
import { API_KEY_STATUSES } from '../backends/key-status.js';

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
  const limit = options.limit ?? 50;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
    throw new ApiKeyValidationError('limit', 'must be an integer from 1 to 1000');
  }
  const query: ListAllOptions = { limit: limit + 1, now: new Date() };
  if (options.cursor) {
    const after = decodeCursor(options.cursor);
    if (!after) throw new ApiKeyValidationError('cursor', 'is not a cursor returned by this API');
    query.after = after;
  }
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
  const items: ApiKeyView[] = [];
  let more = false;
  for await (const record of backend.listAll(query)) {
    if (items.length === limit) {
      more = true;
      break;
    }
    items.push(toApiKeyView(record));
  }
  const last = items.at(-1);
  return { items, nextCursor: more && last ? encodeCursor(last) : null };
}
