import type { ApiKey } from '../../api-key.interface.js';
import { ApiKeyValidationError } from '../../api-key.errors.js';

/**
 * How an `ApiKey` lives in a Redis HASH: one field per record field, dates as epoch
 * milliseconds, `scopes`, `metadata` and `policy` as JSON, and `null` as an absent field (so no
 * value, however odd, is ever mistaken for null).
 */

/** Fields `update` may change; `id`, `keyHash` and `createdAt` never change. */
export const MUTABLE_FIELDS = [
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
    case 'lastUsedAt': {
      const value = record[field];
      return value === null || value === undefined ? null : encodeDate(field, value);
    }
    case 'rotatedFromId':
      return record.rotatedFromId ?? null;
    case 'environment':
      return record.environment ?? null;
    case 'policy':
      return record.policy ? JSON.stringify(record.policy) : null;
    default:
      return String(record[field]);
  }
}

/** `[field, value, ...]` for the given fields, leaving out those that are null. */
export function encodeFields(record: ApiKey, fields: readonly Field[]): string[] {
  const out: string[] = [];
  for (const field of fields) {
    const value = encodeField(record, field);
    if (value !== null) out.push(field, value);
  }
  return out;
}

/** Every stored field of a new record, plus its owner entry. */
export function encodeNewRecord(record: ApiKey): string[] {
  return [
    ...encodeFields(record, ['id', 'keyHash', 'createdAt', ...MUTABLE_FIELDS]),
    OWNER_ENTRY_FIELD,
    ownerEntry(record.createdAt, record.id),
  ];
}

/**
 * Field/value pairs as a reply gives them: a flat array (RESP2, and every script
 * reply), or a Map / plain object (HGETALL on a RESP3 connection).
 */
export function toFieldMap(reply: unknown): Map<string, string> {
  const map = new Map<string, string>();
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) map.set(String(reply[i]), String(reply[i + 1]));
  } else if (reply instanceof Map) {
    for (const [k, v] of reply) map.set(String(k), String(v));
  } else if (reply !== null && typeof reply === 'object') {
    for (const [k, v] of Object.entries(reply)) map.set(k, String(v));
  }
  return map;
}

function date(value: string | undefined): Date | null {
  return value === undefined ? null : new Date(Number(value));
}

/** The record a hash holds, or `null` for a missing (empty) hash. */
export function decodeRecord(reply: unknown): ApiKey | null {
  const fields = toFieldMap(reply);
  const id = fields.get('id');
  const createdAt = date(fields.get('createdAt'));
  if (id === undefined || createdAt === null) return null;
  const policy = fields.get('policy');
  return {
    id,
    name: fields.get('name') ?? '',
    ownerId: fields.get('ownerId') ?? '',
    keyHash: fields.get('keyHash') ?? '',
    hint: fields.get('hint') ?? '',
    scopes: JSON.parse(fields.get('scopes') ?? '[]') as string[],
    metadata: JSON.parse(fields.get('metadata') ?? '{}') as ApiKey['metadata'],
    createdAt,
    updatedAt: date(fields.get('updatedAt')) ?? createdAt,
    expiresAt: date(fields.get('expiresAt')),
    revokedAt: date(fields.get('revokedAt')),
    lastUsedAt: date(fields.get('lastUsedAt')),
    rotatedFromId: fields.get('rotatedFromId') ?? null,
    environment: fields.get('environment') ?? null,
    policy: policy === undefined ? null : (JSON.parse(policy) as ApiKey['policy']),
  };
}
