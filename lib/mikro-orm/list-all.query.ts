import type { ApiKeyStatus, ListAllOptions } from '../backends/backend.interface.js';
import type { ApiKeyTable } from './api-key.table.js';

/** The `where` condition of each status at a bound instant (`?`), in the verifier's precedence. */
const STATUS_CONDITIONS: Record<ApiKeyStatus, { sql: string; usesNow: boolean }> = {
  revoked: { sql: '"revoked_at" is not null', usesNow: false },
  disabled: { sql: '"revoked_at" is null and "disabled_at" is not null', usesNow: false },
  expired: { sql: '"revoked_at" is null and "disabled_at" is null and "expires_at" <= ?::timestamptz', usesNow: true },
  active: {
    sql: '"revoked_at" is null and "disabled_at" is null and ("expires_at" is null or "expires_at" > ?::timestamptz)',
    usesNow: true,
  },
};

/**
 * One page of `listAll`: newest first, keyset-paged on (`created_at`, `id`), which the
 * `(created_at, id)` index serves walked backwards, or the owner index when an owner
 * is named. Filters become bound conditions; the statement text depends only on which
 * filters are present, so PostgreSQL sees few distinct statements.
 */
export function listAllPageQuery(
  table: ApiKeyTable,
  options: Pick<ListAllOptions, 'after' | 'ownerId' | 'environment' | 'status' | 'now'>,
  limit: number,
): { sql: string; bindings: unknown[] } {
  const where: string[] = [];
  const bindings: unknown[] = [];
  if (options.ownerId !== undefined) {
    where.push('"owner_id" = ?');
    bindings.push(options.ownerId);
  }
  if (options.environment === null) {
    where.push('"environment" is null');
  } else if (options.environment !== undefined) {
    where.push('"environment" = ?');
    bindings.push(options.environment);
  }
  if (options.status !== undefined) {
    const condition = STATUS_CONDITIONS[options.status];
    where.push(`(${condition.sql})`);
    if (condition.usesNow) bindings.push(options.now);
  }
  if (options.after !== undefined) {
    where.push('("created_at", "id") < (?::timestamptz, ?::uuid)');
    bindings.push(options.after.createdAt, options.after.id);
  }
  bindings.push(limit);
  const filter = where.length === 0 ? '' : ` where ${where.join(' and ')}`;
  return {
    sql: `select ${table.selectList} from ${table.qualifiedName}${filter} order by "created_at" desc, "id" desc limit ?`,
    bindings,
  };
}
