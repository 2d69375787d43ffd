import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import { asciiJson } from '../internal/ascii-json.js';
import { ownerEntry, wellFormed } from './redis-record.layout.js';

/**
 * Record encoding 1, as releases before encoding 2 wrote it: a JSON array of
 * `V1_FIELDS`' values, every value a string (dates as epoch milliseconds; `scopes`,
 * `metadata` and `policy` as JSON text) or `false` for null. Still written with the
 * option `recordEncoding: 1` (the default), so that instances of earlier releases
 * read what this one writes during a rolling upgrade. Frozen: never change the order.
 */
export const V1_FIELDS = [
  'id',
  'keyHash',
  'createdAt',
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
  'ownerEntry',
  // Appended later: a record written before them has 16 values, and is at version 1
  // with no issuer; one never disabled may have 18.
  'version',
  'issuedById',
  'disabledAt',
] as const;

/** Lengths an encoding-1 array can have: before `version` and `issuedById`, before `disabledAt`, all. */
const LENGTHS = [V1_FIELDS.length - 3, V1_FIELDS.length - 1, V1_FIELDS.length];

/** Thrown for a stored value this version cannot read. Its message holds none of the value. */
export class UnreadableRecordError extends Error {
  constructor() {
    super('a value this version of RedisBackend cannot read.');
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function date(value: unknown): Date {
  const ms = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new UnreadableRecordError();
  return new Date(ms);
}

function optionalDate(value: unknown): Date | null {
  return typeof value === 'string' ? date(value) : null;
}

function json(value: unknown, empty: '[]' | '{}'): unknown {
  const source = typeof value === 'string' ? value : empty;
  if (source === '[]') return [];
  if (source === '{}') return {};
  return JSON.parse(source);
}

function version(value: unknown): number {
  // Absent (undefined) in a record stored before versions existed.
  if (value === undefined) return 1;
  const n = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UnreadableRecordError();
  return n;
}

/** A record from an encoding-1 array (already parsed). */
export function decodeV1(values: readonly unknown[]): ApiKey {
  if (!LENGTHS.includes(values.length)) throw new UnreadableRecordError();
  const [id, keyHash, createdAtText, name, ownerId, hint, scopes, metadata, updatedAt, expiresAt, revokedAt, lastUsedAt, rotatedFromId, environment, policy, , storedVersion, issuedById, disabledAt] =
    values;
  if (typeof id !== 'string' || typeof keyHash !== 'string') throw new UnreadableRecordError();
  const createdAt = date(createdAtText);
  const policyText = text(policy);
  return {
    id,
    name: text(name) ?? '',
    ownerId: text(ownerId) ?? '',
    keyHash,
    hint: text(hint) ?? '',
    scopes: json(scopes, '[]') as string[],
    metadata: json(metadata, '{}') as ApiKey['metadata'],
    createdAt,
    updatedAt: optionalDate(updatedAt) ?? createdAt,
    expiresAt: optionalDate(expiresAt),
    revokedAt: optionalDate(revokedAt),
    lastUsedAt: optionalDate(lastUsedAt),
    rotatedFromId: text(rotatedFromId) ?? null,
    environment: text(environment) ?? null,
    policy: policyText === undefined ? null : (JSON.parse(policyText) as ApiKey['policy']),
    version: version(storedVersion),
    issuedById: text(issuedById) ?? null,
    disabledAt: optionalDate(disabledAt),
  };
}

function encodeDate(field: keyof ApiKey, value: unknown): string {
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new ApiKeyValidationError(field, 'must be a valid Date');
  return String(ms);
}

function encodeValue(record: ApiKey, field: (typeof V1_FIELDS)[number]): string | false {
  switch (field) {
    case 'ownerEntry':
      return ownerEntry(record.createdAt, record.id);
    case 'scopes':
      return wellFormed(JSON.stringify(record.scopes));
    case 'metadata':
      return JSON.stringify(record.metadata);
    case 'createdAt':
    case 'updatedAt':
      return encodeDate(field, record[field]);
    case 'expiresAt':
    case 'revokedAt':
    case 'lastUsedAt':
    case 'disabledAt':
      return record[field] == null ? false : encodeDate(field, record[field]);
    case 'policy':
      return record.policy ? JSON.stringify(record.policy) : false;
    case 'version':
      return String(record.version ?? 1);
    case 'rotatedFromId':
    case 'environment':
    case 'issuedById':
      return record[field] == null ? false : wellFormed(String(record[field]));
    default:
      return wellFormed(String(record[field]));
  }
}

/**
 * A new record in encoding 1, as the previous release writes it: a key never disabled
 * without the `disabledAt` value, the layout releases before `disabledAt` read.
 */
export function encodeV1(record: ApiKey): string {
  const values = V1_FIELDS.map((field) => encodeValue(record, field));
  if (values.at(-1) === false) values.pop();
  return asciiJson(JSON.stringify(values));
}
