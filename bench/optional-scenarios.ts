import { hash } from 'node:crypto';
import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { createKeyv } from '@keyv/redis';
import { createCache } from 'cache-manager';
import pg from 'pg';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { createRedisTwoTierBackend, RedisBackend } from 'nestjs-api-auth/redis';
import { countCalls } from './counting.js';
import { guardFor, type GuardedScenario } from './scenarios.js';
import { openBenchServices, REDIS_URL, type BenchServices } from './services.js';


export interface OptionalScenarios {
  scenarios: GuardedScenario[];
  /**
   * Floor for (e): one SHA-256 of the key header and one Redis round trip (a GET of a
   * key that does not exist) on the same client, nothing else: the least any guard
   * with Redis as its only store and no in-process cache can do per request.
   */
  redisFloor: CanActivate | null;
  /**
   * Floor for (f): one SHA-256 of the key header and one `SELECT ... WHERE key_hash = $1`
   * through a plain `pg` pool of the same size as the ORM's, nothing else: the least
   * any guard reading PostgreSQL per request can do.
   */
  pgFloor: CanActivate | null;
}

/**
 * (d) L1 over a Redis cache over PostgreSQL, (e) Redis as the primary store with no
 * L1, (f) PostgreSQL through MikroORM with no cache. Skipped, with a note, when the
 * servers are not reachable.
 */
export async function optionalScenarios(): Promise<OptionalScenarios> {
  let services: BenchServices;
  try {
    services = await openBenchServices('bench');
  } catch (error) {
    console.error(`PostgreSQL or Redis unreachable; benchmarking memory only (${(error as Error).message})`);
    return { scenarios: [], redisFloor: null, pgFloor: null };
  }
  const { redis, namespace } = services;
  const orm = await MikroORM.init({ clientUrl: services.databaseUrl, entities: [ApiKeyEntity], debug: false, pool: { min: 2, max: 10 } });
  const postgres = new MikroOrmBackend(orm, { ensureSchema: true });
  await postgres.ensureSchema();

  // (f) PostgreSQL directly; (f') the same with the lookup pool (MikroORM 6; 7 ignores the
  // option and looks up through its own pg pool either way). Its pool has the floor's size.
  const direct = countCalls(postgres);
  const pooled = new MikroOrmBackend(orm, { lookupPool: { max: 10 } });
  const directPooled = countCalls(pooled);
  // (e) Redis as the only store.
  const redisPrimary = countCalls(new RedisBackend(redis, { namespace: `${namespace}:primary:`, recordEncoding: 2 }));
  // (d) The cached provider: L1 -> Redis cache (cache-manager + @keyv/redis) -> PostgreSQL,
  // with pub/sub invalidation, exactly as an application builds it.
  const cachedPrimary = countCalls(postgres);
  const cache = createCache({ stores: [createKeyv(REDIS_URL, { namespace: `${namespace}-cache` })] });
  const cached = await createRedisTwoTierBackend({ redis, cache, primary: cachedPrimary.backend, ttl: 300_000, namespace: `${namespace}:cache` });

  const floorPool = new pg.Pool({ connectionString: services.databaseUrl, min: 2, max: 10 });

  const close = async () => {
    await floorPool.end();
    await pooled.close();
    await cached.close();
    await cache.disconnect().catch(() => undefined);
    await orm.close();
    await services.close();
  };

  let closed = false;
  const closeOnce = async () => {
    if (closed) return;
    closed = true;
    await close();
  };

  const redisFloor: CanActivate = {
    async canActivate(context: ExecutionContext) {
      const key = context.getArgByIndex<{ headers: Record<string, string | undefined> }>(0).headers['x-api-key'] ?? '';
      await redis.get(`${namespace}:floor:${hash('sha256', key, 'hex')}`);
      return true;
    },
  };

  const pgFloor: CanActivate = {
    async canActivate(context: ExecutionContext) {
      const key = context.getArgByIndex<{ headers: Record<string, string | undefined> }>(0).headers['x-api-key'] ?? '';
      const { rows } = await floorPool.query('select * from api_keys where key_hash = $1', [hash('sha256', key, 'hex')]);
      return rows.length === 1;
    },
  };

  const scenarios: GuardedScenario[] = [
    { route: 'cached', label: '(d) L1 + Redis cache + PostgreSQL, warm', ...guardFor(cached), primaryCalls: cachedPrimary.counts, close: closeOnce },
    { route: 'redis', label: '(e) RedisBackend, no L1', ...guardFor(redisPrimary.backend), primaryCalls: redisPrimary.counts, close: closeOnce },
    { route: 'postgres', label: '(f) MikroOrmBackend on PostgreSQL, no cache', ...guardFor(direct.backend), primaryCalls: direct.counts, close: closeOnce },
    {
      route: 'postgres-pool',
      label: "(f') MikroOrmBackend on PostgreSQL, no cache, lookupPool",
      ...guardFor(directPooled.backend),
      primaryCalls: directPooled.counts,
      close: closeOnce,
    },
  ];
  return { scenarios, redisFloor, pgFloor };
}
