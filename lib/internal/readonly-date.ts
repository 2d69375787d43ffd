import type { ApiKey } from '../api-key.interface.js';

const READ_ONLY = 'This date belongs to an API key record shared between requests: copy it (new Date(date)) to change it.';

/**
 * A `Date` whose mutators throw. `Object.freeze` cannot stop `setTime` and the other
 * setters (a date's value is an internal slot), so a date shared between requests, in a
 * decoded record's shared view, is one of these: a consumer that changes
 * `request.apiKey.expiresAt` in place gets a `TypeError` instead of changing what the
 * next request sees. Still `instanceof Date`, serialised and compared like one.
 *
 * @internal
 */
export class ReadonlyDate extends Date {
  static {
    const proto = ReadonlyDate.prototype as unknown as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(Date.prototype)) {
      if (!name.startsWith('set')) continue;
      Object.defineProperty(proto, name, {
        value: function readOnly(): never {
          throw new TypeError(READ_ONLY);
        },
        writable: false,
        configurable: false,
      });
    }
    Object.freeze(proto);
  }
}

/** `date` as a {@link ReadonlyDate}; `null` stays `null`. */
export function readonlyDate(date: Date | null | undefined): Date | null {
  return date === null || date === undefined ? null : new ReadonlyDate(date.getTime());
}

/**
 * The record with read-only dates: the view shares them with the record the verdict
 * reads, and freezing cannot stop `setTime`, so a consumer changing
 * `request.apiKey.expiresAt` in place would otherwise move a cached key's expiry.
 */
export function withReadonlyDates(record: ApiKey): ApiKey {
  record.createdAt = readonlyDate(record.createdAt)!;
  record.updatedAt = readonlyDate(record.updatedAt)!;
  record.expiresAt = readonlyDate(record.expiresAt);
  record.revokedAt = readonlyDate(record.revokedAt);
  record.lastUsedAt = readonlyDate(record.lastUsedAt);
  record.disabledAt = readonlyDate(record.disabledAt);
  return record;
}
