import type { ApiKey } from '../api-key.interface.js';
import { asciiJson } from '../internal/ascii-json.js';
import { AT, KIND, ownerEntry, RECORD_ENCODING, RECORD_LAYOUT, type StoredField } from './redis-record.layout.js';
import { encodeValue, storedOptionalText, storedText } from './redis-record.values.js';
import { decodeV1, encodeV1, UnreadableRecordError } from './redis-record.v1.js';
import { decodeV3, encodeV3, isV3 } from './redis-record.v3.js';

/**
 * How an `ApiKey` lives in Redis: one STRING holding the fields of
 * `redis-record.layout.ts` in one of three encodings, told apart by how the text
 * starts: encoding 3 (`redis-record.v3.ts`: separated values, read without a JSON
 * parser), encoding 2 (a JSON array starting with `2`) or encoding 1 (a JSON array of
 * strings starting with the id, `redis-record.v1.ts`). Every one is read; which one is
 * written is `RedisBackendOptions.recordEncoding`.
 */

/** The record encodings this version reads and writes. */
export type RecordEncoding = 1 | 2 | 3;

export { ownerEntry, TIME_WIDTH } from './redis-record.layout.js';

/** A new record as it is stored in `encoding`, owner entry included. */
export function encodeStoredRecord(record: ApiKey, encoding: RecordEncoding = RECORD_ENCODING): string {
  if (encoding === 1) return encodeV1(record);
  if (encoding === 3) return encodeV3(record);
  const values: unknown[] = [RECORD_ENCODING];
  for (const [field, kind] of RECORD_LAYOUT) {
    values.push(kind === 'entry' ? ownerEntry(record.createdAt, record.id) : encodeValue(field, kind, record[field]));
  }
  return asciiJson(JSON.stringify(values));
}

/**
 * `[field, value, ...]` for an update's changes (`updatedAt` included), each value the
 * JSON text of what the stored array holds for it (`null` clears a field), for the
 * update script to decode and put in place.
 */
export function encodeChanges(changes: Partial<ApiKey>, fields: ReadonlyArray<keyof ApiKey & StoredField>): string[] {
  const out: string[] = [];
  for (const field of fields) out.push(field, JSON.stringify(encodeValue(field, KIND[field], changes[field])));
  return out;
}

/**
 * The record a GET of its key (or a script passing it on) answered, or `null` for nil.
 * With `keyHash` (a lookup by hash), also `null` for a record of another hash: a value
 * a foreign writer left there must never answer for this key.
 */
export function decodeStoredRecord(reply: unknown, keyHash?: string): ApiKey | null {
  if (reply === null || reply === undefined) return null;
  try {
    const text = typeof reply === 'string' ? reply : String(reply);
    if (isV3(text)) return decodeV3(text, keyHash);
    const values = JSON.parse(text) as unknown;
    if (!Array.isArray(values)) throw new UnreadableRecordError();
    let record: ApiKey;
    if (values[0] === RECORD_ENCODING) record = decodeV2(values);
    else if (typeof values[0] === 'string') record = decodeV1(values);
    else throw new UnreadableRecordError();
    return keyHash === undefined || record.keyHash === keyHash ? record : null;
  } catch {
    // Not the parser's message: it quotes the text it choked on, a key hash included.
    throw new UnreadableRecordError();
  }
}

// Positions as module constants: the decode runs on every request when Redis is the
// only store, and a position looked up by name per call was a fifth of it.
const ID = AT.id;
const KEY_HASH = AT.keyHash;
const OWNER_ID = AT.ownerId;
const SCOPES = AT.scopes;
const EXPIRES_AT = AT.expiresAt;
const REVOKED_AT = AT.revokedAt;
const LAST_USED_AT = AT.lastUsedAt;
const ENVIRONMENT = AT.environment;
const POLICY = AT.policy;
const VERSION = AT.version;
const NAME = AT.name;
const HINT = AT.hint;
const METADATA = AT.metadata;
const CREATED_AT = AT.createdAt;
const UPDATED_AT = AT.updatedAt;
const ROTATED_FROM_ID = AT.rotatedFromId;
const ISSUED_BY_ID = AT.issuedById;
const DISABLED_AT = AT.disabledAt;

function date(value: unknown): Date {
  if (typeof value !== 'number') throw new UnreadableRecordError();
  return new Date(value);
}

function optionalDate(value: unknown): Date | null {
  return value === null || value === undefined ? null : date(value);
}

/** A record from an encoding-2 array. A freshly parsed array is nobody else's: its parts are used as they are. */
function decodeV2(values: readonly unknown[]): ApiKey {
  const scopes = values[SCOPES];
  const metadata = storedText(values[METADATA]);
  const policy = values[POLICY];
  const version = values[VERSION];
  if (!Array.isArray(scopes) || typeof version !== 'number' || !(version >= 1)) throw new UnreadableRecordError();
  return {
    id: storedText(values[ID]),
    name: storedText(values[NAME]),
    ownerId: storedText(values[OWNER_ID]),
    keyHash: storedText(values[KEY_HASH]),
    hint: storedText(values[HINT]),
    scopes: scopes as string[],
    metadata: metadata === '{}' ? {} : (JSON.parse(metadata) as ApiKey['metadata']),
    createdAt: date(values[CREATED_AT]),
    updatedAt: date(values[UPDATED_AT]),
    expiresAt: optionalDate(values[EXPIRES_AT]),
    revokedAt: optionalDate(values[REVOKED_AT]),
    lastUsedAt: optionalDate(values[LAST_USED_AT]),
    rotatedFromId: storedOptionalText(values[ROTATED_FROM_ID]),
    environment: storedOptionalText(values[ENVIRONMENT]),
    policy: typeof policy === 'string' ? (JSON.parse(policy) as ApiKey['policy']) : null,
    version,
    issuedById: storedOptionalText(values[ISSUED_BY_ID]),
    disabledAt: optionalDate(values[DISABLED_AT]),
  };
}
