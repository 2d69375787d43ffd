import { ownedApiKeyView, type ApiKey, type ApiKeyView } from '../api-key.interface.js';
import { withReadonlyDates } from './readonly-date.js';

/** A record and its view, shared between requests (an L1 entry, a memoized decode). */
export interface SharedApiKey {
  /** The record the verdict reads. Frozen: never mutate it. */
  readonly record: Readonly<ApiKey>;
  /** What `request.apiKey` / `@CurrentApiKey()` receives. Frozen, without the hash. */
  readonly view: Readonly<ApiKeyView>;
}

/**
 * Makes a record nobody else holds shareable, in place: read-only dates (freezing cannot
 * stop `setTime`), the record and what it holds frozen, and a frozen view sharing its
 * frozen parts. One request then cannot change what the next one sees or judges.
 */
export function shareApiKey(owned: ApiKey): SharedApiKey {
  const record = deepFreeze(withReadonlyDates(owned));
  return Object.freeze({ record, view: Object.freeze(ownedApiKeyView(record)) });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof Date)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
