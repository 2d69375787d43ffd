import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import type { ApiKeyChanges, ApiKeyCursor } from '../backends/backend.interface.js';
import { UPDATABLE_FIELDS } from './api-key.statements.js';
import type { ApiKeyRow } from './api-key.table.js';

// Rows to records, and the checks of values before they are bound: a value PostgreSQL
// would refuse becomes a validation error naming the field, not a 503.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function toApiKey(row: ApiKeyRow): ApiKey {
  return recordOf(row, row.key_hash);
}

/** The record of a row read without its `key_hash` column (looked up by that hash). */
export function recordOf(row: Omit<ApiKeyRow, 'key_hash'>, keyHash: string): ApiKey {
  return {
    id: row.id,
    name: row.name,
    ownerId: row.owner_id,
    keyHash,
    hint: row.hint,
    scopes: row.scopes,
    metadata: row.metadata,
    createdAt: new Date(row.created_at_ms),
    updatedAt: new Date(row.updated_at_ms),
    expiresAt: toDate(row.expires_at_ms),
    revokedAt: toDate(row.revoked_at_ms),
    lastUsedAt: toDate(row.last_used_at_ms),
    rotatedFromId: row.rotated_from_id,
    environment: row.environment,
    policy: row.policy as ApiKey['policy'],
    version: row.version,
    issuedById: row.issued_by_id,
    disabledAt: toDate(row.disabled_at_ms),
  };
}

function toDate(epochMs: number | null): Date | null {
  return epochMs === null ? null : new Date(epochMs);
}

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

export function requireUuid(field: string, value: unknown): void {
  if (!isUuid(value)) throw new ApiKeyValidationError(field, 'must be a UUID');
}

export function checkCursor(after: ApiKeyCursor): ApiKeyCursor {
  if (!(after.createdAt instanceof Date) || Number.isNaN(after.createdAt.getTime())) {
    throw new ApiKeyValidationError('after', 'createdAt must be a valid Date');
  }
  if (!isUuid(after.id)) throw new ApiKeyValidationError('after', 'id must be a UUID');
  return after;
}

export function checkVersion(field: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > 2_147_483_647) {
    throw new ApiKeyValidationError(field, 'must be a positive integer');
  }
  return value as number;
}

export function checkIssuer(value: unknown): string | null {
  if (value !== null && (typeof value !== 'string' || value.length === 0 || value.length > 64)) {
    throw new ApiKeyValidationError('issuedById', 'must be null or a string of 1 to 64 characters');
  }
  return value;
}

/** Rejects changes to fields `update` may not write, rather than dropping them silently. */
export function checkChanges(changes: ApiKeyChanges): ApiKeyChanges {
  if (changes === null || typeof changes !== 'object') throw new ApiKeyValidationError('changes', 'must be an object');
  for (const field of Object.keys(changes)) {
    if (field !== 'updatedAt' && !(UPDATABLE_FIELDS as readonly string[]).includes(field)) {
      throw new ApiKeyValidationError(field, 'cannot be changed after the key is created');
    }
  }
  if (!(changes.updatedAt instanceof Date) || Number.isNaN(changes.updatedAt.getTime())) {
    throw new ApiKeyValidationError('updatedAt', 'must be a valid Date');
  }
  return changes;
}

export function encodeChange(changes: ApiKeyChanges, field: (typeof UPDATABLE_FIELDS)[number]): unknown {
  switch (field) {
    case 'scopes':
    case 'metadata':
      return JSON.stringify(changes[field]);
    case 'policy':
      return changes.policy ? JSON.stringify(changes.policy) : null;
    default:
      return changes[field];
  }
}
