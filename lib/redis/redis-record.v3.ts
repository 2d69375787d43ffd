import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import { asciiJson } from '../internal/ascii-json.js';
import { RECORD_LAYOUT, type FieldKind, type StoredField } from './redis-record.layout.js';
import { encodeValue, storedOptionalText, storedText } from './redis-record.values.js';
import { UnreadableRecordError } from './redis-record.v1.js';

/**
 * Record encoding 3: `3`, the key hash, then a JSON array (ASCII) of every other field
 * of RECORD_LAYOUT in its order, valued as in encoding 2 (`scopes` an array, `metadata`
 * and `policy` as JSON text, `null` for null) but for two things:
 * - a date takes two places, `hi, lo` with `ms = hi * 10^8 + lo` and `0 <= lo < 10^8`
 *   (`null, null` for none): each part is a small integer, which V8's JSON parser reads
 *   without its string-to-double conversion, where an epoch millisecond has 13 digits;
 * - there is no owner entry: it follows from `createdAt` and `id`, and the scripts
 *   derive it.
 *
 * Why the hash stands outside the array: the record is looked up by it, so a lookup
 * compares it as one slice and keeps the string it already has, and the JSON parser
 * never scans its 64 characters. A field appended to the layout is appended to the
 * array; a record written before it is shorter and reads it as `null`.
 */
export const V3_FIELDS = RECORD_LAYOUT.filter(([field]) => field !== 'keyHash' && field !== 'ownerEntry');

/** Places a field takes in the array: two for a date. */
const placesOf = (kind: FieldKind): number => (kind === 'date' || kind === 'date?' ? 2 : 1);

/** Each field's (first) index in the array of encoding 3. */
export const V3_AT = Object.fromEntries(
  V3_FIELDS.map(([field], index) => [field, V3_FIELDS.slice(0, index).reduce((places, [, kind]) => places + placesOf(kind), 0)]),
) as Record<StoredField, number>;

/** Length of the array with every field of this version. */
export const V3_LENGTH = V3_FIELDS.reduce((places, [, kind]) => places + placesOf(kind), 0);

/** The split of a date's epoch milliseconds (see above). */
export const DATE_SPLIT = 100_000_000;

const charCodeAt = String.prototype.charCodeAt;
const HEAD = 51; // '3'
const OPEN = 91; // '['
const HEX_HASH_LENGTH = 64;
/** A key hash the text can hold: where the array starts must stay unambiguous. */
const STORABLE_HASH = /^[\x21-\x5a\x5c-\x7e]+$/;

/** Whether stored text is in encoding 3. */
export function isV3(text: string): boolean {
  return charCodeAt.call(text, 0) === HEAD;
}

/** A new record in encoding 3. */
export function encodeV3(record: ApiKey): string {
  if (!STORABLE_HASH.test(record.keyHash)) throw new ApiKeyValidationError('keyHash', 'must be printable ASCII without "["');
  const values: unknown[] = [];
  for (const [field, kind] of V3_FIELDS) {
    const value = encodeValue(field, kind, record[field as keyof ApiKey]);
    if (placesOf(kind) === 1) values.push(value);
    else if (value === null) values.push(null, null);
    else {
      // Exact: `%` on doubles is, and so is dividing a multiple of 10^8 by it.
      const lo = (((value as number) % DATE_SPLIT) + DATE_SPLIT) % DATE_SPLIT;
      values.push(((value as number) - lo) / DATE_SPLIT, lo);
    }
  }
  return `3${record.keyHash}${asciiJson(JSON.stringify(values))}`;
}

const ID = V3_AT.id;
const OWNER_ID = V3_AT.ownerId;
const SCOPES = V3_AT.scopes;
const EXPIRES_AT = V3_AT.expiresAt;
const REVOKED_AT = V3_AT.revokedAt;
const LAST_USED_AT = V3_AT.lastUsedAt;
const ENVIRONMENT = V3_AT.environment;
const POLICY = V3_AT.policy;
const VERSION = V3_AT.version;
const NAME = V3_AT.name;
const HINT = V3_AT.hint;
const METADATA = V3_AT.metadata;
const CREATED_AT = V3_AT.createdAt;
const UPDATED_AT = V3_AT.updatedAt;
const ROTATED_FROM_ID = V3_AT.rotatedFromId;
const ISSUED_BY_ID = V3_AT.issuedById;
const DISABLED_AT = V3_AT.disabledAt;

function date(hi: unknown, lo: unknown): Date {
  if (typeof hi !== 'number' || typeof lo !== 'number') throw new UnreadableRecordError();
  return new Date(hi * DATE_SPLIT + lo);
}

function optionalDate(hi: unknown, lo: unknown): Date | null {
  return hi === null || hi === undefined ? null : date(hi, lo);
}

/**
 * A record from encoding-3 text. With `keyHash` (a lookup by hash), `null` when the
 * stored hash is another one, and the record holds the caller's string.
 */
export function decodeV3(stored: string, keyHash?: string): ApiKey | null {
  const open = charCodeAt.call(stored, HEX_HASH_LENGTH + 1) === OPEN ? HEX_HASH_LENGTH + 1 : stored.indexOf('[', 1);
  if (open < 2) throw new UnreadableRecordError();
  let hash: string;
  if (keyHash === undefined) hash = stored.slice(1, open);
  // A slice and one comparison: startsWith and indexOf compared character by character.
  else if (stored.slice(1, open) === keyHash) hash = keyHash;
  else return null;
  const values = JSON.parse(stored.slice(open)) as unknown;
  if (!Array.isArray(values)) throw new UnreadableRecordError();
  const scopes = values[SCOPES];
  const metadata = storedText(values[METADATA]);
  const policy = values[POLICY];
  const version = values[VERSION];
  if (!Array.isArray(scopes) || typeof version !== 'number' || !(version >= 1)) throw new UnreadableRecordError();
  // The fields in the order of the other decoders: one object shape for every record.
  return {
    id: storedText(values[ID]),
    name: storedText(values[NAME]),
    ownerId: storedText(values[OWNER_ID]),
    keyHash: hash,
    hint: storedText(values[HINT]),
    scopes: scopes as string[],
    metadata: metadata === '{}' ? {} : (JSON.parse(metadata) as ApiKey['metadata']),
    createdAt: date(values[CREATED_AT], values[CREATED_AT + 1]),
    updatedAt: date(values[UPDATED_AT], values[UPDATED_AT + 1]),
    expiresAt: optionalDate(values[EXPIRES_AT], values[EXPIRES_AT + 1]),
    revokedAt: optionalDate(values[REVOKED_AT], values[REVOKED_AT + 1]),
    lastUsedAt: optionalDate(values[LAST_USED_AT], values[LAST_USED_AT + 1]),
    rotatedFromId: storedOptionalText(values[ROTATED_FROM_ID]),
    environment: storedOptionalText(values[ENVIRONMENT]),
    policy: typeof policy === 'string' ? (JSON.parse(policy) as ApiKey['policy']) : null,
    version,
    issuedById: storedOptionalText(values[ISSUED_BY_ID]),
    disabledAt: optionalDate(values[DISABLED_AT], values[DISABLED_AT + 1]),
  };
}
