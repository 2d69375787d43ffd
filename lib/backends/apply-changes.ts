import { cloneApiKey, cloneJson, type ApiKey } from '../api-key.interface.js';
import { VersionConflictError } from '../api-key.errors.js';
import type { ApiKeyChanges, UpdateOptions } from './backend.interface.js';

/** The fields `update` may change besides `updatedAt`; the rest are fixed at create. */
export const CHANGEABLE_FIELDS = ['name', 'scopes', 'metadata', 'expiresAt', 'revokedAt', 'policy', 'disabledAt'] as const;

/** One of {@link CHANGEABLE_FIELDS}. */
export type ChangeableField = (typeof CHANGEABLE_FIELDS)[number];

/** The changeable fields `changes` sets: own keys whose value is not `undefined`. */
export function changedFields(changes: ApiKeyChanges): ChangeableField[] {
  return CHANGEABLE_FIELDS.filter((field) => Object.prototype.hasOwnProperty.call(changes, field) && changes[field] !== undefined);
}

/**
 * `current` with `changes` applied, as a new record, for stores that apply an update
 * in process (the memory backend, custom backends over a compare-and-set primitive).
 * Throws `VersionConflictError` when `expectedVersion` is given and differs. Keeps the
 * first `revokedAt`, and bumps `version` by one.
 */
export function applyChanges(current: ApiKey, changes: ApiKeyChanges, options?: UpdateOptions): ApiKey {
  const version = current.version ?? 1;
  const expected = options?.expectedVersion;
  if (expected !== undefined && expected !== version) throw new VersionConflictError(current.id, expected, version);
  const next = cloneApiKey(current);
  for (const field of changedFields(changes)) {
    // Revocation is sticky: the first `revokedAt` stays.
    if (field === 'revokedAt' && current.revokedAt !== null) continue;
    (next as unknown as Record<string, unknown>)[field] = copyValue(changes[field]);
  }
  next.updatedAt = new Date(changes.updatedAt);
  next.version = version + 1;
  return next;
}

function copyValue(value: unknown): unknown {
  if (value instanceof Date) return new Date(value);
  return cloneJson(value);
}
