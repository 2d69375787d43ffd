import { MikroORM, PostgreSqlConnection, type Options } from '@mikro-orm/postgresql';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import type { SampleBackend } from '../sample-backend.js';

/**
 * `API_AUTH_BACKEND=postgres`: keys in PostgreSQL on `DATABASE_URL`, through a MikroORM
 * instance as an application would configure one (ApiKeyEntity among its entities).
 * The sample creates the table if it is missing; a production app would run its
 * migrations instead. The app opens the ORM, so the app closes it; the backend never does.
 */
export async function createPostgresBackend(): Promise<SampleBackend> {
  const orm = await MikroORM.init({
    clientUrl: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    entities: [ApiKeyEntity],
    // Nothing may use the global EntityManager by accident; the backend does not need it.
    allowGlobalContext: false,
    ...failFast(2_000),
  });
  const backend = new MikroOrmBackend(orm, { ensureSchema: true });
  await backend.ensureSchema();
  return { backend, close: () => orm.close() };
}

/**
 * While PostgreSQL is unreachable, fail fast (the guard answers 503) instead of queueing
 * requests for the pool's default minute. The options differ by major: MikroORM 6 pools
 * through knex, MikroORM 7 hands `driverOptions` to the `pg` pool. An app on one major
 * writes only its branch.
 */
function failFast(ms: number): Partial<Options> {
  const mikroOrm7 = typeof (PostgreSqlConnection.prototype as { getNativeClient?: unknown }).getNativeClient === 'function';
  return (
    mikroOrm7
      ? { pool: { min: 0, max: 10 }, driverOptions: { connectionTimeoutMillis: ms } }
      : { pool: { min: 0, max: 10, acquireTimeoutMillis: ms }, driverOptions: { connection: { connectionTimeoutMillis: ms } } }
  ) as Partial<Options>;
}
