import type { EntityManager, MikroORM } from '@mikro-orm/core';
import { BackendUnavailableError } from '../api-key.errors.js';
import { LookupPool, type LookupPoolSettings } from './lookup-pool.js';

/** What one statement returns: its rows and how many rows it wrote. */
export interface SqlResult<R> {
  rows: R[];
  rowCount: number;
}

/**
 * Runs the backend's statements on the ORM's PostgreSQL connection, on MikroORM 6 or 7,
 * through each major's public API, with every value bound by the server so none is ever
 * in a statement's text or a log (docs/internals.md#sql-on-mikroorm-6-and-7-sql-runnerts).
 */
export interface SqlRunner {
  /** Runs one statement (`?` placeholders) with bound values, outside any ORM transaction. */
  query<R>(sql: string, values: readonly unknown[]): Promise<SqlResult<R>>;
  /**
   * Runs the key lookup (`getByHash`), like `query`: on the dedicated lookup pool when
   * there is one (MikroORM 6 with `lookupPool`), else on the ORM's connection.
   */
  lookup<R>(sql: string, values: readonly unknown[]): Promise<SqlResult<R>>;
  /** Ends what the runner itself opened (the lookup pool); never the ORM's connection. */
  close(): Promise<void>;
  /** Runs `fn` in one transaction; `run` executes a statement in it and resolves to its rows. */
  transaction(fn: (run: <R>(sql: string, values?: readonly unknown[]) => Promise<R[]>) => Promise<void>): Promise<void>;
}

/** The slice of MikroORM's SQL connection (6 and 7) this module calls. */
interface SqlConnection {
  getPlatform(): object;
  isConnected(): Promise<boolean>;
  transactional<T>(cb: (trx: unknown) => Promise<T>): Promise<T>;
  execute(sql: string, params: readonly unknown[], method: 'all', ctx: unknown): Promise<unknown[]>;
  /** MikroORM 7 (`@mikro-orm/postgresql`): the `pg` pool. */
  getNativeClient?: () => Promise<PgPool>;
  /** MikroORM 6 (`@mikro-orm/knex`): the knex instance. */
  getKnex?: () => KnexLike;
  /** Host, port, user, password, database and pg's type parsers, from the ORM's config. */
  getConnectionOptions(): Record<string, unknown>;
}

interface PgPool {
  query(config: { text: string; values: unknown[] }): Promise<{ rows: unknown[]; rowCount: number | null }>;
  /** Set by `pool.end()`, which `orm.close()` calls. */
  ending?: boolean;
}

interface KnexLike {
  raw(sql: string): KnexRaw;
}

interface KnexRaw {
  /** Mixes driver options into the `pg` query config knex sends (knex's documented `options()`). */
  options(options: { values: unknown[] }): PromiseLike<{ rows: unknown[]; rowCount: number | null }>;
}

/**
 * Resolves the runner for `ormOrEm`, or throws a configuration error when it is not a
 * MikroORM on PostgreSQL. Duck-typed, not `instanceof`: the app and this library may
 * load distinct copies of @mikro-orm/core.
 */
export function createSqlRunner(ormOrEm: MikroORM<any> | EntityManager<any>, lookupPool: LookupPoolSettings | null = null): SqlRunner {
  const candidate = ormOrEm as Partial<MikroORM<any>> & Partial<EntityManager<any>>;
  const em = typeof candidate?.fork === 'function' ? (candidate as EntityManager) : candidate?.em;
  if (!em || typeof em.getDriver !== 'function') {
    throw new Error('nestjs-api-auth: MikroOrmBackend needs a MikroORM instance or an EntityManager.');
  }
  // The primary: a revocation must be read back at once even when the ORM has replicas.
  const connection = em.getDriver().getConnection('write') as unknown as SqlConnection;
  if (typeof connection.execute !== 'function' || typeof connection.transactional !== 'function') {
    throw new Error('nestjs-api-auth: MikroOrmBackend needs a SQL driver; use @mikro-orm/postgresql.');
  }
  const platform = platformName(connection.getPlatform());
  if (!platform.includes('PostgreSqlPlatform')) {
    throw new Error(`nestjs-api-auth: MikroOrmBackend supports PostgreSQL only (the ORM uses ${platform[0] ?? 'an unknown platform'}).`);
  }
  const transaction: SqlRunner['transaction'] = (fn) =>
    connection.transactional((trx) => fn((sql, values = []) => connection.execute(sql, values, 'all', trx) as Promise<any[]>));
  if (typeof connection.getNativeClient === 'function') return new PoolRunner(connection, transaction);
  if (typeof connection.getKnex === 'function') {
    const config = em.config;
    const pool = lookupPool
      ? new LookupPool(
          () => ({ connectionOptions: connection.getConnectionOptions(), driverOptions: config.get('driverOptions') as { connection?: unknown } }),
          lookupPool,
        )
      : null;
    return new KnexRunner(connection.getKnex.bind(connection), transaction, pool);
  }
  throw new Error('nestjs-api-auth: MikroOrmBackend needs MikroORM 6.4+ or 7 with @mikro-orm/postgresql.');
}

/** MikroORM 7: statements go straight to the `pg` pool the ORM owns and shares. */
class PoolRunner implements SqlRunner {
  private pool: PgPool | null = null;
  private readonly numbered = new Map<string, string>();

  constructor(
    private readonly connection: SqlConnection,
    readonly transaction: SqlRunner['transaction'],
  ) {}

  async query<R>(sql: string, values: readonly unknown[]): Promise<SqlResult<R>> {
    const pool = this.pool && !this.pool.ending ? this.pool : await this.resolvePool();
    const result = await pool.query({ text: numbered(this.numbered, sql), values: values as unknown[] });
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
  }

  /** The ORM's own pool is already a plain `pg` pool: `lookupPool` changes nothing here. */
  lookup<R>(sql: string, values: readonly unknown[]): Promise<SqlResult<R>> {
    return this.query<R>(sql, values);
  }

  async close(): Promise<void> {}

  private async resolvePool(): Promise<PgPool> {
    // `getNativeClient()` connects a closed ORM. After `orm.close()` (the app shutting
    // down) that would open a pool nobody closes and keep the process alive, so only a
    // pool the application itself reconnected is taken up.
    if (this.pool && !(await this.connection.isConnected())) {
      throw new BackendUnavailableError('PostgreSQL is unavailable: the MikroORM connection is closed.');
    }
    this.pool = await this.connection.getNativeClient!();
    return this.pool;
  }
}

/**
 * MikroORM 6: statements go through the knex instance the ORM owns, as text already
 * numbered, with the values handed to `pg` as its query config's `values` through
 * knex's `options()`. Knex then has no placeholder to rewrite and no bindings to
 * format, where `raw(sql, bindings)` makes a regular-expression pass over the whole
 * statement text on every call. The values are still bound by the server; and since
 * knex never holds them as bindings, its own error messages (which inline bindings
 * into the text) cannot carry them either.
 */
class KnexRunner implements SqlRunner {
  private readonly numbered = new Map<string, string>();

  constructor(
    /** Called each time: `orm.connect()` after `orm.close()` replaces the instance. */
    private readonly getKnex: () => KnexLike,
    readonly transaction: SqlRunner['transaction'],
    private readonly lookupPool: LookupPool | null,
  ) {}

  lookup<R>(sql: string, values: readonly unknown[]): Promise<SqlResult<R>> {
    if (!this.lookupPool) return this.query<R>(sql, values);
    return this.lookupPool
      .query(numbered(this.numbered, sql), values as unknown[])
      .then((result) => ({ rows: result.rows as R[], rowCount: result.rowCount ?? 0 }));
  }

  close(): Promise<void> {
    return this.lookupPool?.close() ?? Promise.resolve();
  }

  async query<R>(sql: string, values: readonly unknown[]): Promise<SqlResult<R>> {
    const result = await this.getKnex()
      .raw(numbered(this.numbered, sql))
      .options({ values: values as unknown[] });
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
  }
}

/** `?` to `$1, $2, ...`; the backend's statements hold no other `?`. Memoised in `cache` per text. */
function numbered(cache: Map<string, string>, sql: string): string {
  let text = cache.get(sql);
  if (text === undefined) {
    let n = 0;
    text = sql.replace(/\?/g, () => `$${++n}`);
    // Bounded: update statements vary only by which of six fields they set.
    if (cache.size < 256) cache.set(sql, text);
  }
  return text;
}

function platformName(platform: object): string[] {
  const names: string[] = [];
  for (let proto = Object.getPrototypeOf(platform); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    names.push(proto.constructor.name);
  }
  return names;
}
