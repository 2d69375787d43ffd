import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import { asciiJson } from '../internal/ascii-json.js';
import { RECORD_LAYOUT, type StoredField } from './redis-record.layout.js';
import { encodeValue } from './redis-record.values.js';
import { UnreadableRecordError } from './redis-record.v1.js';

/**
 * Record encoding 3: `3`, the key hash, then a JSON array (ASCII) of every other field
 * of RECORD_LAYOUT in its order, valued as in encoding 2 (dates as numbers, `scopes`
 * an array, `metadata` and `policy` as JSON text, `null` for null), without the owner
 * entry, which follows from `createdAt` and `id` (the scripts derive it).
 *
 * Why the hash stands outside the array: the record is looked up by it, so a lookup
 * compares it in place and keeps the string it already has, and the JSON parser never
 * scans its 64 characters. A field appended to the layout is appended to the array;
 * a record written before it is shorter and reads it as `null`.
 */
export const V3_FIELDS = RECORD_LAYOUT.filter(([field]) => field !== 'keyHash' && field !== 'ownerEntry');

/** Each field's index in the array of encoding 3. */
export const V3_AT = Object.fromEntries(V3_FIELDS.map(([field], index) => [field, index])) as Record<StoredField, number>;

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
  const values = V3_FIELDS.map(([field, kind]) => encodeValue(field, kind, record[field as keyof ApiKey]));
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

function text(value: unknown): string {
  if (typeof value !== 'string') throw new UnreadableRecordError();
  return value;
}

/** `null` for `null`, and for `undefined`: a field appended after the record was written. */
function optionalText(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function date(value: unknown): Date {
  if (typeof value !== 'number') throw new UnreadableRecordError();
  return new Date(value);
}

function optionalDate(value: unknown): Date | null {
  return value === null || value === undefined ? null : date(value);
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
  const metadata = text(values[METADATA]);
  const policy = values[POLICY];
  const version = values[VERSION];
  if (!Array.isArray(scopes) || typeof version !== 'number' || !(version >= 1)) throw new UnreadableRecordError();
  // The fields in the order of the other decoders: one object shape for every record.
  return {
    id: text(values[ID]),
    name: text(values[NAME]),
    ownerId: text(values[OWNER_ID]),
    keyHash: hash,
    hint: text(values[HINT]),
    scopes: scopes as string[],
    metadata: metadata === '{}' ? {} : (JSON.parse(metadata) as ApiKey['metadata']),
    createdAt: date(values[CREATED_AT]),
    updatedAt: date(values[UPDATED_AT]),
    expiresAt: optionalDate(values[EXPIRES_AT]),
    revokedAt: optionalDate(values[REVOKED_AT]),
    lastUsedAt: optionalDate(values[LAST_USED_AT]),
    rotatedFromId: optionalText(values[ROTATED_FROM_ID]),
    environment: optionalText(values[ENVIRONMENT]),
    policy: typeof policy === 'string' ? (JSON.parse(policy) as ApiKey['policy']) : null,
    version,
    issuedById: optionalText(values[ISSUED_BY_ID]),
    disabledAt: optionalDate(values[DISABLED_AT]),
  };
}
