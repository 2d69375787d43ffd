import type { ApiKey } from '../api-key.interface.js';
import type { ApiKeyCursor, ApiKeyStatus, ListAllOptions } from './backend.interface.js';
import { compareByCursor } from './cursor.js';

/** Every {@link ApiKeyStatus}, in the order they take precedence. */
export const API_KEY_STATUSES: readonly ApiKeyStatus[] = ['revoked', 'disabled', 'expired', 'active'];

/**
 * What `record` is at `now`. Revoked wins over disabled, disabled over expired: the
 * order the verifier refuses them in, so the status a listing shows is the refusal
 * code the key would get.
 */
export function keyStatusAt(record: Pick<ApiKey, 'revokedAt' | 'expiresAt' | 'disabledAt'>, now: Date): ApiKeyStatus {
  if (record.revokedAt !== null) return 'revoked';
  if (record.disabledAt != null) return 'disabled';
  if (record.expiresAt !== null && record.expiresAt.getTime() <= now.getTime()) return 'expired';
  return 'active';
}

/** Whether `record` passes `listAll`'s filters (`ownerId`, `environment`, `status`). */
export function matchesListAllFilters(record: ApiKey, options: ListAllOptions): boolean {
  if (options.ownerId !== undefined && record.ownerId !== options.ownerId) return false;
  if (options.environment !== undefined && (record.environment ?? null) !== options.environment) return false;
  return options.status === undefined || keyStatusAt(record, options.now) === options.status;
}

/** Whether `record` comes strictly after `cursor` in `listAll`'s newest-first order. */
export function isBeforeCursor(record: { createdAt: Date; id: string }, cursor: ApiKeyCursor | undefined): boolean {
  return cursor === undefined || compareByCursor(record, cursor) < 0;
}

/** Orders records newest first: `createdAt`, then `id`, both descending. */
export function compareNewestFirst(a: { createdAt: Date; id: string }, b: { createdAt: Date; id: string }): number {
  return compareByCursor(b, a);
}
