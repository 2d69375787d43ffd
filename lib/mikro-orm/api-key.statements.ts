import type { ApiKeyChanges } from '../backends/backend.interface.js';
import { API_KEY_COLUMNS, type ApiKeyTable } from './api-key.table.js';

/** The fields `update` may write, in the order their assignments appear in the statement. */
export const UPDATABLE_FIELDS = ['name', 'scopes', 'metadata', 'expiresAt', 'revokedAt', 'policy', 'disabledAt'] as const;

/** One of {@link UPDATABLE_FIELDS}. */
export type UpdatableField = (typeof UPDATABLE_FIELDS)[number];

const ASSIGNMENTS: Record<UpdatableField, string> = {
  name: '"name" = ?',
  scopes: '"scopes" = ?::jsonb',
  metadata: '"metadata" = ?::jsonb',
  expiresAt: '"expires_at" = ?::timestamptz',
  // Sticky revocation, decided by the database in the same statement: a stored
  // revocation is never replaced or cleared.
  revokedAt: '"revoked_at" = coalesce(t."revoked_at", ?::timestamptz)',
  policy: '"policy" = ?::jsonb',
  disabledAt: '"disabled_at" = ?::timestamptz',
};

/** Every statement the backend runs, built once per table. `?` are bound values. */
export class ApiKeyStatements {
  readonly byHash: string;
  readonly byId: string;
  readonly insert: string;
  readonly delete: string;
  readonly recordUsage: string;
  readonly countByOwner: string;
  readonly firstPage: string;
  readonly pageAfter: string;
  readonly firstIssuedPage: string;
  readonly issuedPageAfter: string;
  readonly purgeExpired: string;
  readonly purgeRevoked: string;
  readonly replaceHash: string;
  private readonly updates = new Map<number, string>();

  constructor(private readonly table: ApiKeyTable) {
    const t = table.qualifiedName;
    const select = `select ${table.selectList} from ${t}`;
    const order = 'order by "created_at", "id" limit ?';
    // The hash is the caller's own argument: not read back.
    this.byHash = `select ${table.selectListOf(null, ['key_hash'])} from ${t} where key_hash=?`;
    this.byId = `${select} where "id" = ?::uuid`;
    this.insert =
      `insert into ${t} (${API_KEY_COLUMNS.map((c) => `"${c}"`).join(', ')}) values ` +
      '(?::uuid, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::timestamptz, ' +
      `?::timestamptz, ?::uuid, ?, ?::jsonb, ?::int, ?, ?::timestamptz) returning ${table.selectList}`;
    this.delete = `delete from ${t} where "id" = ?::uuid`;
    // Not a management write, so `version` stays: it would make every ETag stale.
    this.recordUsage =
      `update ${t} set "last_used_at" = ?::timestamptz ` +
      'where "id" = ?::uuid and ("last_used_at" is null or "last_used_at" < ?::timestamptz)';
    this.countByOwner = `select count(*)::int as "count" from ${t} where "owner_id" = ?`;
    this.firstPage = `${select} where "owner_id" = ? ${order}`;
    this.pageAfter = `${select} where "owner_id" = ? and ("created_at", "id") > (?::timestamptz, ?::uuid) ${order}`;
    this.firstIssuedPage = `${select} where "issued_by_id" = ? order by "id" limit ?`;
    this.issuedPageAfter = `${select} where "issued_by_id" = ? and "id" > ?::uuid order by "id" limit ?`;
    // One bounded batch on the expires_at / revoked_at index; `skip locked` lets purges
    // on several instances share the work instead of waiting on each other's rows.
    const purge = (column: string) =>
      `delete from ${t} where "id" in (select "id" from ${t} where "${column}" < ?::timestamptz ` +
      'limit ? for update skip locked) returning "id", "key_hash"';
    this.purgeExpired = purge('expires_at');
    this.purgeRevoked = purge('revoked_at');
    // Not a management write: `version` and `updated_at` stay (see ApiKeyBackend.replaceHash).
    this.replaceHash = `update ${t} set "key_hash" = ? where "id" = ?::uuid and "key_hash" = ?`;
  }

  /**
   * The conditional `UPDATE` writing exactly `fields`, plus `updated_at` and
   * `version + 1`. Values, in order: the id, each field's value, the expected version
   * twice (`null` for none).
   *
   * One statement answers all three outcomes without a race: `current` locks the row
   * (`for update`) and reads its latest committed version; `updated` writes only if that
   * version is the expected one. The single result row carries the current version
   * (`null`: no such id) and, when the write happened, the record after it.
   */
  update(fields: readonly UpdatableField[]): string {
    let mask = 0;
    for (const field of fields) mask |= 1 << UPDATABLE_FIELDS.indexOf(field);
    let sql = this.updates.get(mask);
    if (sql === undefined) {
      const t = this.table.qualifiedName;
      const set = UPDATABLE_FIELDS.filter((_, i) => mask & (1 << i)).map((field) => ASSIGNMENTS[field]);
      set.push('"updated_at" = ?::timestamptz', '"version" = t."version" + 1');
      sql =
        `with "current" as (select "id", "version" from ${t} where "id" = ?::uuid for update), ` +
        `"updated" as (update ${t} as t set ${set.join(', ')} from "current" ` +
        'where t."id" = "current"."id" and (?::int is null or t."version" = ?::int) ' +
        `returning ${this.table.selectListOf('t')}) ` +
        'select "current"."version" as "current_version", "updated".* from (select 1) as "one" ' +
        'left join "current" on true left join "updated" on true';
      this.updates.set(mask, sql);
    }
    return sql;
  }
}

/** The updatable fields `changes` sets: own keys whose value is not `undefined`. */
export function changedFields(changes: ApiKeyChanges): UpdatableField[] {
  return UPDATABLE_FIELDS.filter((field) => Object.hasOwn(changes, field) && changes[field] !== undefined);
}
