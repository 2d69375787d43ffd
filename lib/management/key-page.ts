import { toApiKeyView, type ApiKey, type ApiKeyView } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import type { ApiKeyCursor } from '../backends/backend.interface.js';
import { decodeCursor, encodeCursor } from '../backends/cursor.js';

/** A page's size as given (default 50), or `ApiKeyValidationError` outside 1 to 1000. */
export function pageLimit(limit: unknown = 50): number {
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
    throw new ApiKeyValidationError('limit', 'must be an integer from 1 to 1000');
  }
  return limit;
}

/** Where the page after `cursor` starts, `undefined` for the first page. */
export function pageStart(cursor: string | null | undefined): ApiKeyCursor | undefined {
  if (!cursor) return undefined;
  const after = decodeCursor(cursor);
  if (!after) throw new ApiKeyValidationError('cursor', 'is not a cursor returned by this API');
  return after;
}

/**
 * The first `limit` records of `records` (asked for `limit + 1`, so one more says there
 * is a next page) as views, and the cursor of that next page.
 */
export async function collectPage(records: AsyncIterable<ApiKey>, limit: number): Promise<{ items: ApiKeyView[]; nextCursor: string | null }> {
  const items: ApiKeyView[] = [];
  let more = false;
  for await (const record of records) {
    if (items.length === limit) {
      more = true;
      break;
    }
    items.push(toApiKeyView(record));
  }
  const last = items.at(-1);
  return { items, nextCursor: more && last ? encodeCursor(last) : null };
}
