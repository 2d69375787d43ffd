import type { EntityManager, MikroORM } from '@mikro-orm/core';
import { BackendUnavailableError } from '../api-key.errors.js';

/** What one statement returns: its rows and how many rows it wrote. */
export interface SqlResult<R> {
  rows: R[];
  rowCount: number;
}

/**
 * Runs the backend's statements on the ORM's PostgreSQL connection, on MikroORM 6 or 7,
 * through each major's public API:
 *
 * - `query` sends the statement with its values bound by the server (extended
 *   protocol), so no value (a key hash above all) is ever part of the statement text,
 *   PostgreSQL's logs or MikroORM's query log. MikroORM 7 hands out its `pg` pool
 *   (`connection.getNativeClient()`); MikroORM 6 its knex instance (`connection.getKnex()`,
 *   of which only the public `raw(sql, bindings)` is used). Neither major's
 *   `connection.execute` would do: both inline the values into the text before sending it.
 * - `transaction` runs DDL through `connection.transactional` and `connection.execute`,
 *   the same calls on both majors; its values are only table and schema names.
 *
 * Statements are written once with `?` placeholders; the `pg` path numbers them.
 */
export interface SqlRunner {
  /** Runs one statement (`?` placeholders) with bound values, outside any ORM transaction. */
  query<R>(sql: string, values: readonly unknown[]): Promise<SqlResult<R>>;
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
}

interface PgPool {
  query(config: { text: string; values: unknown[] }): Promise<{ rows: unknown[]; rowCount: number | null }>;
  /** Set by `pool.end()`, which `orm.close()` calls. */
  ending?: boolean;
}

interface KnexLike {
  raw(sql: string, bindings: readonly unknown[]): PromiseLike<{ rows: unknown[]; rowCount: number | null }>;
}

/**
 * Resolves the runner for `ormOrEm`, or throws a configuration error when it is not a
 * MikroORM on PostgreSQL. Duck-typed, not `instanceof`: the app and this library may
 * load distinct copies of @mikro-orm/core.
 */
export function createSqlRunner(ormOrEm: MikroORM<any> | EntityManager<any>): SqlRunner {
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
    const getKnex = connection.getKnex.bind(connection);
    return {
      // Looked up each time: `orm.connect()` after `orm.close()` replaces the instance.
      query: async (sql, values) => {
        const result = await getKnex().raw(sql, values);
        return { rows: result.rows as never[], rowCount: result.rowCount ?? 0 };
      },
      transaction,
    };
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
    const result = await pool.query({ text: this.number(sql), values: values as unknown[] });
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
  }

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

  /** `?` to `$1, $2, ...`; the backend's statements hold no other `?`. Memoised per text. */
  private number(sql: string): string {
    let text = this.numbered.get(sql);
    if (text === undefined) {
      let n = 0;
      text = sql.replace(/\?/g, () => `$${++n}`);
      // Bounded: update statements vary only by which of six fields they set.
      if (this.numbered.size < 256) this.numbered.set(sql, text);
    }
    return text;
  }
}

function platformName(platform: object): string[] {
  const names: string[] = [];
  for (let proto = Object.getPrototypeOf(platform); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    names.push(proto.constructor.name);
  }
  return names;
}
