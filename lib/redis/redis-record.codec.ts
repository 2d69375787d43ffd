import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import { asciiJson } from '../internal/ascii-json.js';

/**
 * How an `ApiKey` lives in Redis: one STRING holding a JSON array of the values of
 * `STORED_FIELDS`, in that order, every value a string (dates as epoch milliseconds;
 * `scopes`, `metadata` and `policy` as JSON text) or `false` for null. Verification
 * reads it with one GET and parses one string: no Lua, no thirty RESP strings. The
 * write scripts read and rewrite it with Redis's `cjson`; since every value is a string
 * or `false`, nothing changes on the way through (no number rounding, no `[]` turned
 * into `{}`).
 */

/**
 * The record fields after `id`, `keyHash` and `createdAt`, in the order of the stored
 * array as first laid out. Never reorder: stored records depend on it.
 */
const ORIGINAL_FIELDS = [
  'name',
  'ownerId',
  'hint',
  'scopes',
  'metadata',
  'updatedAt',
  'expiresAt',
  'revokedAt',
  'lastUsedAt',
  'rotatedFromId',
  'environment',
  'policy',
] as const;

/**
 * Fields appended to the stored array after the owner entry, later than the original
 * layout, in the order they were added. A record written before them is shorter and
 * decodes the missing ones as their defaults (`version` 1, `issuedById` and
 * `disabledAt` null); the update script fills them in on its next write.
 */
const ADDED_FIELDS = ['version', 'issuedById', 'disabledAt'] as const;
/** How many of {@link ADDED_FIELDS} the layouts of earlier releases held. */
const EARLIER_ADDED_COUNTS = [0, 2];

/**
 * Hash field holding the record's member in its owner's sorted set. Stored so scripts
 * can remove or move the entry without recomputing it.
 */
export const OWNER_ENTRY_FIELD = 'ownerEntry';

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

type Field = keyof ApiKey;

function encodeDate(field: Field, value: Date): string {
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new ApiKeyValidationError(field, 'must be a valid Date');
  return String(ms);
}

function encodeField(record: ApiKey, field: Field): string | null {
  switch (field) {
    case 'scopes':
      return JSON.stringify(record.scopes);
    case 'metadata':
      return JSON.stringify(record.metadata);
    case 'createdAt':
    case 'updatedAt':
      return encodeDate(field, record[field]);
    case 'expiresAt':
    case 'revokedAt':
    case 'lastUsedAt':
    case 'disabledAt': {
      const value = record[field];
      return value === null || value === undefined ? null : encodeDate(field, value);
    }
    case 'rotatedFromId':
      return record.rotatedFromId ?? null;
    case 'environment':
      return record.environment ?? null;
    case 'policy':
      return record.policy ? JSON.stringify(record.policy) : null;
    case 'version':
      return String(record.version ?? 1);
    case 'issuedById':
      return record.issuedById ?? null;
    default:
      return String(record[field]);
  }
}

/**
 * `[field, value, ...]` for an update's changes (`updatedAt` included), each value
 * tagged: `s<text>` for a value, `n` for null, so the script can clear a field.
 */
export function encodeChanges(changes: Partial<ApiKey>, fields: readonly Field[]): string[] {
  const out: string[] = [];
  for (const field of fields) {
    const value = encodeField(changes as ApiKey, field);
    out.push(field, value === null ? 'n' : `s${wellFormed(value)}`);
  }
  return out;
}

/**
 * Every stored record field of the original layout, in the order of the stored array
 * (the owner entry is bookkeeping, not part of the record).
 */
const RECORD_FIELDS = ['id', 'keyHash', 'createdAt', ...ORIGINAL_FIELDS] as const;
/** The stored array's fields: the original record's, its owner entry, then the added fields. */
export const STORED_FIELDS = [...RECORD_FIELDS, OWNER_ENTRY_FIELD, ...ADDED_FIELDS] as const;
/** Lengths of the stored array this version reads: the current layout's, and every earlier one's. */
const READABLE_LENGTHS = new Set([STORED_FIELDS.length, ...EARLIER_ADDED_COUNTS.map((added) => RECORD_FIELDS.length + 1 + added)]);

type StoredField = (typeof STORED_FIELDS)[number];
/** Each field's position in the stored array, so decoding does not depend on the order. */
const AT = Object.fromEntries(STORED_FIELDS.map((field, index) => [field, index])) as Record<StoredField, number>;

/** Lua for the scripts: `P.<field>`, the field's (1-based) position in the stored array. */
export const LUA_FIELD_POSITIONS = `local P = { ${STORED_FIELDS.map((field, index) => `${field} = ${index + 1}`).join(', ')} }\n`;

/** A new record as it is stored, owner entry included. */
export function encodeStoredRecord(record: ApiKey): string {
  const values: Array<string | false> = STORED_FIELDS.map((field) => {
    if (field === OWNER_ENTRY_FIELD) return ownerEntry(record.createdAt, record.id);
    const value = encodeField(record, field);
    return value === null ? false : wellFormed(value);
  });
  // A key that was never disabled keeps the previous release's layout, so that
  // instances still on it read the keys this one creates (during a rolling upgrade).
  // The update script appends the field when a disable or enable first writes it.
  if (values.at(-1) === false && STORED_FIELDS.at(-1) === 'disabledAt') values.pop();
  return asciiJson(JSON.stringify(values));
}

/**
 * Lone UTF-16 surrogates become U+FFFD, as UTF-8 encoding makes them anyway: JSON would
 * carry them as `\ud800` escapes, which `cjson` refuses to decode, so a record holding
 * one could never be updated again.
 */
function wellFormed(value: string): string {
  return LONE_SURROGATE.test(value) ? value.replace(LONE_SURROGATE_ALL, '\ufffd') : value;
}
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATE_ALL = new RegExp(LONE_SURROGATE.source, 'g');

/** Thrown for a stored value this version cannot read. Its message holds none of the value. */
class UnreadableRecordError extends Error {
  constructor() {
    super('a value this version of RedisBackend cannot read.');
  }
}

/** The record a GET of its key (or a script passing it on) answered, or `null` for nil. */
export function decodeStoredRecord(reply: unknown): ApiKey | null {
  if (reply === null || reply === undefined) return null;
  try {
    const values = JSON.parse(String(reply)) as unknown;
    if (!Array.isArray(values) || !READABLE_LENGTHS.has(values.length)) {
      throw new UnreadableRecordError();
    }
    return decodeValues(values);
  } catch {
    // Not the parser's message: it quotes the text it choked on, a key hash included.
    throw new UnreadableRecordError();
  }
}

/** A stored value: a string, or `undefined` for `false` (null) and anything else. */
function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function date(value: unknown): Date {
  const ms = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new UnreadableRecordError();
  return new Date(ms);
}

function version(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UnreadableRecordError();
  return n;
}

function optionalDate(value: unknown): Date | null {
  return typeof value === 'string' ? date(value) : null;
}

/** Parses a JSON field, without the parser for the values nearly every key has. */
function json(value: unknown, empty: '[]' | '{}'): unknown {
  const source = typeof value === 'string' ? value : empty;
  if (source === '[]') return [];
  if (source === '{}') return {};
  return JSON.parse(source);
}

// Positions as constants: indexing by a field name looked up per call was a fifth of
// the decode, and the decode runs on every request when Redis is the only store.
const ID = AT.id;
const KEY_HASH = AT.keyHash;
const CREATED_AT = AT.createdAt;
const NAME = AT.name;
const OWNER_ID = AT.ownerId;
const HINT = AT.hint;
const SCOPES = AT.scopes;
const METADATA = AT.metadata;
const UPDATED_AT = AT.updatedAt;
const EXPIRES_AT = AT.expiresAt;
const REVOKED_AT = AT.revokedAt;
const LAST_USED_AT = AT.lastUsedAt;
const ROTATED_FROM_ID = AT.rotatedFromId;
const ENVIRONMENT = AT.environment;
const POLICY = AT.policy;
const VERSION = AT.version;
const ISSUED_BY_ID = AT.issuedById;
const DISABLED_AT = AT.disabledAt;

/** A record from the stored array, in `STORED_FIELDS` order. */
function decodeValues(values: readonly unknown[]): ApiKey {
  const id = text(values[ID]);
  const keyHash = text(values[KEY_HASH]);
  if (id === undefined || keyHash === undefined) throw new UnreadableRecordError();
  const createdAt = date(values[CREATED_AT]);
  const policy = text(values[POLICY]);
  return {
    id,
    name: text(values[NAME]) ?? '',
    ownerId: text(values[OWNER_ID]) ?? '',
    keyHash,
    hint: text(values[HINT]) ?? '',
    scopes: json(values[SCOPES], '[]') as string[],
    metadata: json(values[METADATA], '{}') as ApiKey['metadata'],
    createdAt,
    updatedAt: optionalDate(values[UPDATED_AT]) ?? createdAt,
    expiresAt: optionalDate(values[EXPIRES_AT]),
    revokedAt: optionalDate(values[REVOKED_AT]),
    lastUsedAt: optionalDate(values[LAST_USED_AT]),
    rotatedFromId: text(values[ROTATED_FROM_ID]) ?? null,
    environment: text(values[ENVIRONMENT]) ?? null,
    policy: policy === undefined ? null : (JSON.parse(policy) as ApiKey['policy']),
    // Absent (undefined) in a record stored before versions existed.
    version: values[VERSION] === undefined ? 1 : version(values[VERSION]),
    issuedById: text(values[ISSUED_BY_ID]) ?? null,
    disabledAt: optionalDate(values[DISABLED_AT]),
  };
}
