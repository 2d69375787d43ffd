import type { EntityManager, IDatabaseDriver, MikroORM } from '@mikro-orm/core';
import type { Knex } from '@mikro-orm/postgresql';
import { Logger } from '@nestjs/common';
import type { ApiKey } from '../../api-key.interface.js';
import { ApiKeyNotFoundError, ApiKeyValidationError, BackendUnavailableError } from '../../api-key.errors.js';
import { applyChanges } from '../apply-changes.js';
import type { ApiKeyBackend, ApiKeyChanges, ApiKeyCursor, ListByOwnerOptions, UpdateOptions } from '../backend.interface.js';
import { ADDED_COLUMNS, API_KEY_COLUMNS, ApiKeyTable, type ApiKeyRow } from './api-key.table.js';
import {
  resolveMikroOrmBackendOptions,
  type MikroOrmBackendOptions,
  type ResolvedMikroOrmBackendOptions,
} from './mikro-orm-backend.options.js';
import { toBackendError } from './postgres-errors.js';
import { safeErrorMessage } from '../../safe-error-message.js';

/** One page of an owner's keys, from {@link MikroOrmBackend.listPageByOwner}. */
export interface ApiKeyRecordPage {
  items: ApiKey[];
  /** Pass as `after` to get the next page; `null` on the last page. */
  next: ApiKeyCursor | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Stores keys in PostgreSQL through your MikroORM instance: `new MikroOrmBackend(orm)`
 * (or an `EntityManager`). It uses the ORM's connection pool and never closes it.
 *
 * Safe outside a request context (guards, cron jobs, WebSockets, `allowGlobalContext:
 * false`): it never touches an EntityManager's identity map, unit of work or
 * transaction, only the driver's connection pool, which every fork shares. Each
 * operation is one atomic SQL statement with bound parameters: `recordUsage` is one
 * conditional `UPDATE`, revocation is sticky inside the `UPDATE` itself, and key
 * hashes never appear in statement text or in MikroORM's query log. Every statement
 * runs on the primary (`write`) connection, so a revocation is seen at once even when
 * the ORM has read replicas, and in its own implicit transaction, never in one the
 * caller has open.
 */
export class MikroOrmBackend implements ApiKeyBackend {
  /** The resolved options (defaults applied). */
  readonly options: ResolvedMikroOrmBackendOptions;
  private readonly driver: IDatabaseDriver;
  private readonly table: ApiKeyTable;
  private readonly sql: Statements;
  /** Settles once the table is known to exist; reset on failure so the next call retries. */
  private schemaReady: Promise<void> | null = null;
  private schemaChecked = false;
  private readonly logger = new Logger('ApiAuth');

  constructor(ormOrEm: MikroORM<any> | EntityManager<any>, options: MikroOrmBackendOptions = {}) {
    this.options = resolveMikroOrmBackendOptions(options);
    this.driver = resolveDriver(ormOrEm);
    this.table = new ApiKeyTable(this.options.tableName, this.options.schema);
    this.sql = statements(this.table);
  }

  /**
   * Nest calls this for the resolved `API_KEY_BACKEND` provider: creates the table when
   * `ensureSchema` is on. A database that is down at start-up does not stop the app
   * (the guard answers 503 and the first operation retries); a table of the wrong
   * shape does, since no retry fixes it.
   */
  async onModuleInit(): Promise<void> {
    if (!this.options.ensureSchema) return;
    try {
      await this.ensureSchema();
    } catch (error) {
      if (!(error instanceof BackendUnavailableError)) throw error;
      this.logger.warn(`Could not check the key table at start-up; will retry on first use. ${safeErrorMessage(error)}`);
    }
  }

  /**
   * Creates the table, its constraints and index if missing, then checks every column
   * the backend needs is there. Idempotent and safe to race: concurrent callers in any
   * number of processes serialise on a PostgreSQL advisory lock.
   */
  async ensureSchema(): Promise<void> {
    this.schemaReady ??= this.createSchema().then(
      () => {
        this.schemaChecked = true;
      },
      (error: unknown) => {
        this.schemaReady = null;
        throw error;
      },
    );
    return this.schemaReady;
  }

  async getByHash(keyHash: string): Promise<ApiKey | null> {
    const { rows } = await this.query<ApiKeyRow>(this.sql.byHash, [keyHash]);
    return rows[0] ? toApiKey(rows[0]) : null;
  }

  async getById(id: string): Promise<ApiKey | null> {
    // Not a UUID cannot be stored, and PostgreSQL would reject the cast.
    if (!isUuid(id)) return null;
    const { rows } = await this.query<ApiKeyRow>(this.sql.byId, [id]);
    return rows[0] ? toApiKey(rows[0]) : null;
  }

  async create(apiKey: ApiKey): Promise<ApiKey> {
    requireUuid('id', apiKey.id);
    if (apiKey.rotatedFromId !== null) requireUuid('rotatedFromId', apiKey.rotatedFromId);
    const { rows } = await this.query<ApiKeyRow>(this.sql.insert, [
      apiKey.id,
      apiKey.name,
      apiKey.ownerId,
      apiKey.keyHash,
      apiKey.hint,
      JSON.stringify(apiKey.scopes),
      JSON.stringify(apiKey.metadata),
      apiKey.createdAt,
      apiKey.updatedAt,
      apiKey.expiresAt,
      apiKey.revokedAt,
      apiKey.lastUsedAt,
      apiKey.rotatedFromId,
      apiKey.environment ?? null,
      apiKey.policy ? JSON.stringify(apiKey.policy) : null,
    ]);
    return toApiKey(rows[0]!);
  }

  /**
   * Interim adapter to the partial-update contract (read, apply, write back): NOT
   * atomic. The 18stack branch replaces it with a single conditional statement.
   */
  async update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    if (!isUuid(id)) throw new ApiKeyNotFoundError(id);
    const current = await this.getById(id);
    if (!current) throw new ApiKeyNotFoundError(id);
    return this.writeBack(applyChanges(current, changes, options));
  }

  private async writeBack(apiKey: ApiKey): Promise<ApiKey> {
    if (!isUuid(apiKey.id)) throw new ApiKeyNotFoundError(apiKey.id);
    if (apiKey.rotatedFromId !== null) requireUuid('rotatedFromId', apiKey.rotatedFromId);
    const { rows } = await this.query<ApiKeyRow>(this.sql.update, [
      apiKey.name,
      apiKey.ownerId,
      apiKey.hint,
      JSON.stringify(apiKey.scopes),
      JSON.stringify(apiKey.metadata),
      apiKey.updatedAt,
      apiKey.expiresAt,
      apiKey.revokedAt,
      apiKey.lastUsedAt,
      apiKey.rotatedFromId,
      apiKey.environment ?? null,
      apiKey.policy ? JSON.stringify(apiKey.policy) : null,
      apiKey.id,
    ]);
    if (!rows[0]) throw new ApiKeyNotFoundError(apiKey.id);
    return toApiKey(rows[0]);
  }

  async delete(id: string): Promise<void> {
    if (!isUuid(id)) return;
    await this.query(this.sql.delete, [id]);
  }

  async recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { rowCount } = await this.query(this.sql.recordUsage, [usedAt, id, staleBefore]);
    return rowCount > 0;
  }

  async countByOwner(ownerId: string): Promise<number> {
    const { rows } = await this.query<{ count: number }>(this.sql.countByOwner, [ownerId]);
    return rows[0]?.count ?? 0;
  }

  /**
   * Streams the owner's keys oldest first, `pageSize` rows per query, resuming each
   * page after the last (`created_at`, `id`) seen: keyset pagination on the
   * `(owner_id, created_at, id)` index, so the millionth key costs what the first does.
   */
  async *listByOwner(ownerId: string, options: ListByOwnerOptions = {}): AsyncIterable<ApiKey> {
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    let after = options.after;
    while (remaining > 0) {
      const size = Math.min(this.options.pageSize, remaining);
      const page = await this.listPageByOwner(ownerId, { after, limit: size });
      for (const record of page.items) yield record;
      remaining -= page.items.length;
      if (!page.next || page.items.length < size) return;
      after = page.next;
    }
  }

  /**
   * One page of an owner's keys, oldest first, for application code that pages
   * without HTTP (an admin screen, an export job). `next` is `null` when no key
   * follows; otherwise pass it as `after`. `limit` defaults to `pageSize`.
   */
  async listPageByOwner(ownerId: string, options: ListByOwnerOptions = {}): Promise<ApiKeyRecordPage> {
    const limit = options.limit ?? this.options.pageSize;
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new ApiKeyValidationError('limit', 'must be a non-negative integer');
    }
    if (limit === 0) return { items: [], next: null };
    const after = options.after;
    // One row more than asked tells whether another page exists without a count.
    const { rows } = after
      ? await this.query<ApiKeyRow>(this.sql.pageAfter, [ownerId, checkCursor(after).createdAt, after.id, limit + 1])
      : await this.query<ApiKeyRow>(this.sql.firstPage, [ownerId, limit + 1]);
    const items = rows.slice(0, limit).map(toApiKey);
    const last = items.at(-1);
    return { items, next: rows.length > limit && last ? { createdAt: last.createdAt, id: last.id } : null };
  }

  private async createSchema(): Promise<void> {
    const ddl = this.table.createStatements();
    let missing: string[] = [];
    try {
      await this.knex().transaction(async (trx) => {
        // Serialises concurrent start-ups: `create ... if not exists` alone can still
        // collide on PostgreSQL's catalog when two sessions create the same table.
        await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`nestjs-api-auth:${this.table.qualifiedName}`]);
        if (ddl.schema) await trx.raw(ddl.schema);
        await trx.raw(ddl.table);
        const result = await trx.raw<{ rows: { column_name: string }[] }>(
          'select column_name from information_schema.columns where table_schema = coalesce(?, current_schema()) and table_name = ?',
          [this.table.schema ?? null, this.table.tableName],
        );
        const present = new Set(result.rows.map((row) => row.column_name));
        missing = API_KEY_COLUMNS.filter((column) => !present.has(column));
        // A key table of an earlier release lacks only columns added since; add them
        // (nullable, so existing rows stay valid). Any other gap is not our table.
        if (missing.length > 0 && missing.every((column) => column in ADDED_COLUMNS)) {
          await trx.raw(ddl.addColumns(missing));
          missing = [];
        }
        if (missing.length === 0) await trx.raw(ddl.index);
      });
    } catch (error) {
      throw toBackendError(error, [], this.table);
    }
    if (missing.length > 0) {
      // A table of that name exists but is not ours (or an older shape): say so plainly.
      throw new Error(
        `nestjs-api-auth: table ${this.table.qualifiedName} exists but lacks column(s) ${missing.join(', ')}. ` +
          'Migrate it to the shape of ApiKeyEntity or choose another tableName.',
      );
    }
  }

  private async query<R = unknown>(sql: string, bindings: unknown[]): Promise<{ rows: R[]; rowCount: number }> {
    if (this.options.ensureSchema && !this.schemaChecked) await this.ensureSchema();
    let result: { rows: R[]; rowCount: number | null };
    try {
      result = await this.knex().raw(sql, bindings as Knex.RawBinding[]);
    } catch (error) {
      throw toBackendError(error, bindings, this.table);
    }
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }

  private knex(): Knex {
    // Straight from the driver rather than from an `em.fork()` per operation: every
    // fork shares this pool, and a fork costs ~30 µs of allocations on the
    // verification hot path for nothing this backend uses. Looked up each time
    // because `orm.connect()` after `orm.close()` replaces the knex instance.
    return getKnex(this.driver);
  }
}

interface Statements {
  byHash: string;
  byId: string;
  insert: string;
  update: string;
  delete: string;
  recordUsage: string;
  countByOwner: string;
  firstPage: string;
  pageAfter: string;
}

/** Every statement the backend runs, built once per table. `?` are knex bindings. */
function statements(table: ApiKeyTable): Statements {
  const t = table.qualifiedName;
  const select = `select ${table.selectList} from ${t}`;
  const order = 'order by "created_at", "id" limit ?';
  return {
    byHash: `${select} where "key_hash" = ?`,
    byId: `${select} where "id" = ?::uuid`,
    insert:
      `insert into ${t} (${API_KEY_COLUMNS.map((c) => `"${c}"`).join(', ')}) values ` +
      '(?::uuid, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::uuid, ?, ?::jsonb) ' +
      `returning ${table.selectList}`,
    // Sticky revocation and a monotonic lastUsedAt are decided by the database in the
    // same statement, so a stale copy of the record can never undo a concurrent write.
    update:
      `update ${t} set "name" = ?, "owner_id" = ?, "hint" = ?, "scopes" = ?::jsonb, "metadata" = ?::jsonb, ` +
      '"updated_at" = ?::timestamptz, "expires_at" = ?::timestamptz, ' +
      '"revoked_at" = coalesce("revoked_at", ?::timestamptz), ' +
      '"last_used_at" = greatest("last_used_at", ?::timestamptz), "rotated_from_id" = ?::uuid, ' +
      '"environment" = ?, "policy" = ?::jsonb ' +
      `where "id" = ?::uuid returning ${table.selectList}`,
    delete: `delete from ${t} where "id" = ?::uuid`,
    recordUsage:
      `update ${t} set "last_used_at" = ?::timestamptz ` +
      'where "id" = ?::uuid and ("last_used_at" is null or "last_used_at" < ?::timestamptz)',
    countByOwner: `select count(*)::int as "count" from ${t} where "owner_id" = ?`,
    firstPage: `${select} where "owner_id" = ? ${order}`,
    pageAfter: `${select} where "owner_id" = ? and ("created_at", "id") > (?::timestamptz, ?::uuid) ${order}`,
  };
}

function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    ownerId: row.owner_id,
    keyHash: row.key_hash,
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
    version: 1,
    issuedById: null,
  };
}

function toDate(epochMs: number | null): Date | null {
  return epochMs === null ? null : new Date(epochMs);
}

function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

function requireUuid(field: string, value: unknown): void {
  if (!isUuid(value)) throw new ApiKeyValidationError(field, 'must be a UUID');
}

function checkCursor(after: ApiKeyCursor): ApiKeyCursor {
  if (!(after.createdAt instanceof Date) || Number.isNaN(after.createdAt.getTime())) {
    throw new ApiKeyValidationError('after', 'createdAt must be a valid Date');
  }
  if (!isUuid(after.id)) throw new ApiKeyValidationError('after', 'id must be a UUID');
  return after;
}

function resolveDriver(ormOrEm: MikroORM<any> | EntityManager<any>): IDatabaseDriver {
  const candidate = ormOrEm as Partial<MikroORM<any>> & Partial<EntityManager<any>>;
  // Duck-typed, not `instanceof`: the app and this library may load distinct copies of @mikro-orm/core.
  const em = typeof candidate?.fork === 'function' ? (candidate as EntityManager) : candidate?.em;
  if (!em || typeof em.getDriver !== 'function') {
    throw new Error('nestjs-api-auth: MikroOrmBackend needs a MikroORM instance or an EntityManager.');
  }
  const driver = em.getDriver();
  getKnex(driver);
  return driver;
}

function getKnex(driver: IDatabaseDriver): Knex {
  const connection = driver.getConnection('write') as { getKnex?: () => Knex };
  if (typeof connection.getKnex !== 'function') {
    throw new Error('nestjs-api-auth: MikroOrmBackend needs a SQL driver; use @mikro-orm/postgresql.');
  }
  const knex = connection.getKnex();
  const dialect = (knex.client as { dialect?: string } | undefined)?.dialect;
  if (dialect !== 'postgresql') {
    throw new Error(`nestjs-api-auth: MikroOrmBackend supports PostgreSQL only (the ORM uses ${dialect ?? 'an unknown dialect'}).`);
  }
  return knex;
}
