import type { ApiKey } from '../api-key.interface.js';

/**
 * Record encoding 1, as releases before encoding 2 wrote it: a JSON array of
 * `V1_FIELDS`' values, every value a string (dates as epoch milliseconds; `scopes`,
 * `metadata` and `policy` as JSON text) or `false` for null. Only read now: every write
 * script rewrites the record it touches in encoding 2. Frozen: never change the order.
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
