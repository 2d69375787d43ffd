import type { ApiKey } from '../api-key.interface.js';
import type { PurgeOptions } from './backend.interface.js';

/** Whether `purge` with these criteria deletes `record`: for backends that test records one by one. */
export function isPurgeable(record: Pick<ApiKey, 'expiresAt' | 'revokedAt'>, options: Pick<PurgeOptions, 'expiredBefore' | 'revokedBefore'>): boolean {
  const { expiredBefore, revokedBefore } = options;
  if (expiredBefore !== undefined && record.expiresAt !== null && record.expiresAt.getTime() < expiredBefore.getTime()) return true;
  return revokedBefore !== undefined && record.revokedAt !== null && record.revokedAt.getTime() < revokedBefore.getTime();
}
