/**
 * The stored array of `RedisBackend`'s record encoding 2: `[2, <the values of
 * RECORD_LAYOUT, in order>]`, JSON, kept ASCII. The leading 2 tells it from encoding 1
 * (`redis-record.v1.ts`), whose array starts with the id.
 *
 * What each kind is stored as:
 * - `text`, `text?`: a JSON string (`text?`: or `null`);
 * - `date`, `date?`: epoch milliseconds as a JSON number (`date?`: or `null`). The
 *   scripts write numbers back digit for digit (`%.0f`), never through `cjson`'s
 *   14-digit rounding;
 * - `list`: a JSON array of strings (`scopes`), read without a second parse;
 * - `json`, `json?`: the value's JSON text as a JSON string (`metadata`, `policy`), so
 *   the scripts never decode it (`cjson` would reorder keys and round numbers);
 * - `version`: a JSON number;
 * - `entry`: the owner-set member (see `ownerEntry`), bookkeeping for the scripts.
 *
 * The fields the guard reads come first. Never reorder or remove an entry: stored
 * records depend on the positions. A new field is one line appended at the end (a
 * nullable date: `['disabledAt', 'date?']`): the encoder, update changes and the
 * scripts follow from it, and records written before it are shorter and read it as
 * `null`. TypeScript then asks for its line in `decodeV2` (and a `null` in `decodeV1`).
 */
export const RECORD_LAYOUT = [
  ['id', 'text'],
  ['keyHash', 'text'],
  ['ownerId', 'text'],
  ['scopes', 'list'],
  ['expiresAt', 'date?'],
  ['revokedAt', 'date?'],
  ['lastUsedAt', 'date?'],
  ['environment', 'text?'],
  ['policy', 'json?'],
  ['version', 'version'],
  ['name', 'text'],
  ['hint', 'text'],
  ['metadata', 'json'],
  ['createdAt', 'date'],
  ['updatedAt', 'date'],
  ['rotatedFromId', 'text?'],
  ['issuedById', 'text?'],
  ['ownerEntry', 'entry'],
  ['disabledAt', 'date?'],
] as const;

/** The first value of an encoding-2 array. */
export const RECORD_ENCODING = 2;

/** A field of the stored array. */
export type StoredField = (typeof RECORD_LAYOUT)[number][0];
/** How a field's value is stored. */
export type FieldKind = (typeof RECORD_LAYOUT)[number][1];

/** Each field's index in the stored array (0-based; index 0 holds the encoding). */
export const AT = Object.fromEntries(RECORD_LAYOUT.map(([field], index) => [field, index + 1])) as Record<StoredField, number>;

/** Each field's kind. */
export const KIND = Object.fromEntries(RECORD_LAYOUT) as Record<StoredField, FieldKind>;

/** Length of an encoding-2 array with every field of this version. */
export const RECORD_LENGTH = RECORD_LAYOUT.length + 1;

// Shifts every valid Date (±8.64e15 ms) to a non-negative number of fixed width, so
// lexicographic order of the strings is chronological order.
const EPOCH_SHIFT = 8_640_000_000_000_000n;
/** Digits of the time part of an owner entry; the id starts after it and a `:`. */
export const TIME_WIDTH = 17;

/**
 * The member of an owner's sorted set: `<createdAt, fixed width>:<id>`. All members
 * share score 0, so Redis orders them byte-wise: by `createdAt`, then by `id`, which is
 * exactly the order `listByOwner` promises, and a cursor maps to one exclusive
 * `ZRANGEBYLEX` bound (keyset paging, no offsets).
 */
export function ownerEntry(createdAt: Date, id: string): string {
  const ms = createdAt.getTime();
  return `${(BigInt(ms) + EPOCH_SHIFT).toString().padStart(TIME_WIDTH, '0')}:${id}`;
}

/**
 * Lone UTF-16 surrogates become U+FFFD, as UTF-8 encoding makes them anyway: JSON would
 * carry them as `\ud800` escapes, which `cjson` refuses to decode, so a record holding
 * one could never be updated again.
 */
export function wellFormed(value: string): string {
  return LONE_SURROGATE.test(value) ? value.replace(LONE_SURROGATE_ALL, '\ufffd') : value;
}
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATE_ALL = new RegExp(LONE_SURROGATE.source, 'g');

