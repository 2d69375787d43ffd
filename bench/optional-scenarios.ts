import { MikroORM } from '@mikro-orm/postgresql';
import { createKeyv } from '@keyv/redis';
import { createCache } from 'cache-manager';
import { randomBytes } from 'node:crypto';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { createRedisCachedBackend, RedisBackend } from 'nestjs-api-auth/redis';
import { createClient } from 'redis';
import { countCalls } from './counting.js';
import { guardFor, type GuardedScenario } from './scenarios.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function urlFor(database: string): string {
  const url = new URL(DATABASE_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * (d) L1 over a Redis cache over PostgreSQL, (e) Redis as the primary store with no
 * L1, (f) PostgreSQL through MikroORM with no cache. Skipped, with a note, when the
 * servers are not reachable.
 */
export async function optionalScenarios(): Promise<GuardedScenario[]> {
  const suffix = randomBytes(4).toString('hex');
  const database = `api_auth_bench_${suffix}`;
  const namespace = `api-auth-bench-${suffix}`;
  let admin: MikroORM | undefined;
  let redis: ReturnType<typeof createClient> | undefined;
  try {
    admin = await MikroORM.init({ clientUrl: DATABASE_URL, entities: [ApiKeyEntity], debug: false });
    await admin.em.getConnection().execute(`create database "${database}"`);
    redis = createClient({ url: REDIS_URL, socket: { connectTimeout: 1_000, reconnectStrategy: false } });
    await redis.connect();
  } catch (error) {
    console.error(`PostgreSQL or Redis unreachable; benchmarking memory only (${(error as Error).message})`);
    await admin?.close();
    return [];
  }

  const orm = await MikroORM.init({ clientUrl: urlFor(database), entities: [ApiKeyEntity], debug: false, pool: { min: 2, max: 10 } });
  const postgres = new MikroOrmBackend(orm, { ensureSchema: true });
  await postgres.ensureSchema();

  // (f) PostgreSQL directly.
  const direct = countCalls(postgres);
  // (e) Redis as the only store.
  const redisPrimary = countCalls(new RedisBackend(redis, { namespace: `${namespace}:primary:` }));
  // (d) The cached provider: L1 -> Redis cache (cache-manager + @keyv/redis) -> PostgreSQL,
  // with pub/sub invalidation, exactly as an application builds it.
  const cachedPrimary = countCalls(postgres);
  const cache = createCache({ stores: [createKeyv(REDIS_URL, { namespace: `${namespace}-cache` })] });
  const cached = await createRedisCachedBackend({ redis, cache, primary: cachedPrimary.backend, ttl: 300_000, namespace: `${namespace}:cache` });

  const close = async () => {
    await cached.close();
    await cache.disconnect().catch(() => undefined);
    for await (const key of redis!.scanIterator({ MATCH: `${namespace}*`, COUNT: 1000 })) {
      const keys = Array.isArray(key) ? key : [key];
      if (keys.length) await redis!.del(keys);
    }
    await redis!.quit();
    await orm.close();
    await admin!.em.getConnection().execute(`drop database if exists "${database}" with (force)`);
    await admin!.close();
  };

  let closed = false;
  const closeOnce = async () => {
    if (closed) return;
    closed = true;
    await close();
  };

  return [
    { route: 'cached', label: '(d) L1 + Redis cache + PostgreSQL, warm', ...guardFor(cached), primaryCalls: cachedPrimary.counts, close: closeOnce },
    { route: 'redis', label: '(e) RedisBackend, no L1', ...guardFor(redisPrimary.backend), primaryCalls: redisPrimary.counts, close: closeOnce },
    { route: 'postgres', label: '(f) MikroOrmBackend on PostgreSQL, no cache', ...guardFor(direct.backend), primaryCalls: direct.counts, close: closeOnce },
  ];
}
