import type { EntityManager, MikroORM } from '@mikro-orm/core';
import { Logger } from '@nestjs/common';
import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyNotFoundError, ApiKeyValidationError, BackendUnavailableError, VersionConflictError } from '../api-key.errors.js';
import type {
  ApiKeyBackend,
  ApiKeyChanges,
  ApiKeyCursor,
  ListAllOptions,
  ListByOwnerOptions,
  PurgeOptions,
  UpdateOptions,
} from '../backends/backend.interface.js';
import { ApiKeyStatements, changedFields } from './api-key.statements.js';
import { ApiKeyTable, type ApiKeyRow } from './api-key.table.js';
import { listAllPageQuery } from './list-all.query.js';
import {
  resolveMikroOrmBackendOptions,
  type MikroOrmBackendOptions,
  type ResolvedMikroOrmBackendOptions,
} from './mikro-orm-backend.options.js';
import { toBackendError } from './postgres-errors.js';
import { createApiKeySchema } from './api-key.schema-setup.js';
import { createSqlRunner, type SqlRunner } from './sql-runner.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';
import { checkChanges, checkCursor, checkIssuer, checkVersion, encodeChange, isUuid, recordOf, requireUuid, toApiKey } from './api-key.row.js';

/** One page of an owner's keys, from {@link MikroOrmBackend.listPageByOwner}. */
export interface ApiKeyRecordPage {
  items: ApiKey[];
  /** Pass as `after` to get the next page; `null` on the last page. */
  next: ApiKeyCursor | null;
}

/** A row of the `update` statement: the current version (`null`: no such id) and, if written, the record. */
type UpdateRow = { current_version: number | null } & ({ id: string } & ApiKeyRow | { id: null });

/**
 * Stores keys in PostgreSQL through your MikroORM instance (6.4+ or 7):
 * `new MikroOrmBackend(orm)` (or an `EntityManager`). It uses the ORM's connection pool
 * and never closes it (with `lookupPool` on MikroORM 6, key lookups use a small pool
 * of the backend's own, which `close()` ends).
 *
 * Safe outside a request context (guards, cron jobs, WebSockets, `allowGlobalContext:
 * false`): it never touches an EntityManager's identity map, unit of work or
 * transaction, only the driver's connection pool, which every fork shares. Each
 * operation is one atomic SQL statement with bound parameters: `recordUsage` is one
 * conditional `UPDATE`, `update` one conditional `UPDATE` that writes only the given
 * fields and checks the expected version, revocation is sticky inside it, and key
 * hashes never appear in statement text or in MikroORM's query log. Every statement
 * runs on the primary (`write`) connection, so a revocation is seen at once even when
 * the ORM has read replicas, and in its own implicit transaction, never in one the
 * caller has open.
 */
export class MikroOrmBackend implements ApiKeyBackend {
  /** The resolved options (defaults applied). */
  readonly options: ResolvedMikroOrmBackendOptions;
  private readonly runner: SqlRunner;
  private readonly table: ApiKeyTable;
  private readonly sql: ApiKeyStatements;
  /** Settles once the table is known to exist; reset on failure so the next call retries. */
  private schemaReady: Promise<void> | null = null;
  private schemaChecked = false;
  private readonly logger = new Logger('ApiAuth');

  constructor(ormOrEm: MikroORM<any> | EntityManager<any>, options: MikroOrmBackendOptions = {}) {
    this.options = resolveMikroOrmBackendOptions(options);
    this.runner = createSqlRunner(ormOrEm, this.options.lookupPool);
    this.table = new ApiKeyTable(this.options.tableName, this.options.schema);
    this.sql = new ApiKeyStatements(this.table);
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
    this.schemaReady ??= createApiKeySchema(this.runner, this.table).then(
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

  /**
   * Ends the lookup pool the backend opened for `lookupPool` (Nest calls this at
   * application shutdown); lookups after it fail with `BackendUnavailableError`. The
   * ORM's connection is the application's and stays open.
   */
  close(): Promise<void> {
    return this.runner.close();
  }

  /** Nest calls this at application shutdown: {@link close}. */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  getByHash(keyHash: string): Promise<ApiKey | null> {
    return this.query<Omit<ApiKeyRow, 'key_hash'>>(this.sql.byHash, [keyHash], true).then(({ rows }) =>
      rows[0] ? recordOf(rows[0], keyHash) : null,
    );
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
      checkVersion('version', apiKey.version ?? 1),
      checkIssuer(apiKey.issuedById ?? null),
      apiKey.disabledAt ?? null,
    ]);
    return toApiKey(rows[0]!);
  }

  async update(id: string, changes: ApiKeyChanges, options: UpdateOptions = {}): Promise<ApiKey> {
    const expected = options.expectedVersion === undefined ? null : checkVersion('expectedVersion', options.expectedVersion);
    const fields = changedFields(checkChanges(changes));
    if (!isUuid(id)) throw new ApiKeyNotFoundError(id);
    const values: unknown[] = [id];
    for (const field of fields) values.push(encodeChange(changes, field));
    values.push(changes.updatedAt, expected, expected);
    const { rows } = await this.query<UpdateRow>(this.sql.update(fields), values);
    const row = rows[0];
    if (!row || row.current_version === null) throw new ApiKeyNotFoundError(id);
    if (row.id === null) {
      // Without an expected version nothing but a missing row stops the write.
      if (expected === null) throw new ApiKeyNotFoundError(id);
      throw new VersionConflictError(id, expected, row.current_version);
    }
    return toApiKey(row);
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

  /**
   * Streams the keys `issuerId` minted, `pageSize` rows per query, in id order (keyset
   * pagination on the `(issued_by_id, id)` index). Used by cascading revocation.
   */
  async *listByIssuer(issuerId: string): AsyncIterable<ApiKey> {
    let after: string | null = null;
    for (;;) {
      const size = this.options.pageSize;
      const { rows }: { rows: ApiKeyRow[] } =
        after === null
          ? await this.query<ApiKeyRow>(this.sql.firstIssuedPage, [issuerId, size])
          : await this.query<ApiKeyRow>(this.sql.issuedPageAfter, [issuerId, after, size]);
      for (const row of rows) yield toApiKey(row);
      if (rows.length < size) return;
      after = rows.at(-1)!.id;
    }
  }

  /**
   * Deletes up to `limit` expired, then revoked rows, one bounded `delete ... where id in
   * (select ... limit n for update skip locked)` per criterion on the `expires_at` and
   * `revoked_at` indexes.
   */
  async purge(options: PurgeOptions): Promise<number> {
    let left = options.limit;
    const deleted: Array<{ id: string; keyHash: string }> = [];
    for (const [sql, before] of [
      [this.sql.purgeExpired, options.expiredBefore],
      [this.sql.purgeRevoked, options.revokedBefore],
    ] as const) {
      if (before === undefined || left <= 0) continue;
      const { rows } = await this.query<{ id: string; key_hash: string }>(sql, [before, left]);
      for (const row of rows) deleted.push({ id: row.id, keyHash: row.key_hash });
      left -= rows.length;
    }
    if (deleted.length > 0) options.onDeleted?.(deleted);
    return deleted.length;
  }

  async replaceHash(id: string, fromHash: string, toHash: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { rowCount } = await this.query(this.sql.replaceHash, [toHash, id, fromHash]);
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

  /**
   * Every owner's keys, newest first, `pageSize` rows per query, each page resuming
   * before the last (`created_at`, `id`) seen: keyset pagination on the
   * `(created_at, id)` index (the owner index when `ownerId` is given), with the
   * filters in the statement.
   */
  async *listAll(options: ListAllOptions): AsyncIterable<ApiKey> {
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    let after = options.after === undefined ? undefined : checkCursor(options.after);
    while (remaining > 0) {
      const size = Math.min(this.options.pageSize, remaining);
      const { sql, bindings } = listAllPageQuery(this.table, { ...options, after }, size);
      const { rows } = await this.query<ApiKeyRow>(sql, bindings);
      for (const row of rows) yield toApiKey(row);
      remaining -= rows.length;
      if (rows.length < size) return;
      const last = rows.at(-1)!;
      after = { createdAt: new Date(last.created_at_ms), id: last.id };
    }
  }

  /** `lookup`: the key lookup, which may have a pool of its own (`lookupPool`). */
  private query<R = unknown>(sql: string, bindings: unknown[], lookup = false): Promise<{ rows: R[]; rowCount: number }> {
    if (this.options.ensureSchema && !this.schemaChecked) return this.ensureSchema().then(() => this.run<R>(sql, bindings, lookup));
    return this.run<R>(sql, bindings, lookup);
  }

  /** Chained rather than awaited: each async layer on the lookup path costs a few promise jobs. */
  private run<R>(sql: string, bindings: unknown[], lookup: boolean): Promise<{ rows: R[]; rowCount: number }> {
    const pending = lookup ? this.runner.lookup<R>(sql, bindings) : this.runner.query<R>(sql, bindings);
    return pending.then(undefined, (error: unknown) => {
      throw toBackendError(error, bindings, this.table);
    });
  }
}
