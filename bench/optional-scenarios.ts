import { hash } from 'node:crypto';
import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { createKeyv } from '@keyv/redis';
import { createCache } from 'cache-manager';
import pg from 'pg';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { createRedisTwoTierBackend, RedisBackend } from 'nestjs-api-auth/redis';
import type { ApiKey } from 'nestjs-api-auth';
import { countCalls } from './counting.js';
import { guardFor, type GuardedScenario } from './scenarios.js';
import { openBenchServices, REDIS_URL, type BenchServices } from './services.js';

/** The record encoding route (e) writes its key in: `BENCH_RECORD_ENCODING`, else the cheapest to read. */
const BENCH_RECORD_ENCODING = Number(process.env.BENCH_RECORD_ENCODING ?? 3) as 1 | 2 | 3;

/** Case `redis-churn`: keys sent in turn, and the decode memo's size, well below it. */
const CHURN_KEYS = 64;
const CHURN_MEMO = 16;

/** The method the verifier looks keys up with when a backend has it (lib/verification/lookup-callbacks.ts). */
const LOOK_UP_BY_HASH = Symbol.for('nestjs-api-auth.lookUpByHash');
type LookUp = (keyHash: string, onRecord: (record: ApiKey | null, sharedView?: unknown) => void, onError: (error: unknown) => void) => void;

/** `RedisBackend` counting its lookups itself, as the memory route's backend does. */
class CountingRedisBackend extends RedisBackend {
  readonly counts: Record<string, number> = { getByHash: 0 };
  override getByHash(keyHash: string): Promise<ApiKey | null> {
    this.counts.getByHash!++;
    return super.getByHash(keyHash);
  }
  // The verification path's lookup, when this version of the library has it.
  static {
    const lookUp = (RedisBackend.prototype as unknown as Record<symbol, LookUp | undefined>)[LOOK_UP_BY_HASH];
    if (lookUp) {
      Object.defineProperty(CountingRedisBackend.prototype, LOOK_UP_BY_HASH, {
        value: function (this: CountingRedisBackend, keyHash: string, onRecord: Parameters<LookUp>[1], onError: Parameters<LookUp>[2]) {
          this.counts.getByHash!++;
          lookUp.call(this, keyHash, onRecord, onError);
        },
      });
    }
  }
}

export interface OptionalScenarios {
  scenarios: GuardedScenario[];
  /**
   * Floor for (e): one SHA-256 of the key header and one Redis GET of the record that
   * hash names (the bytes the route reads, not parsed), on the same client, nothing
   * else: the least any guard with Redis as its only store and no in-process cache can
   * do per request. Sent the route's key.
   */
  redisFloor: CanActivate | null;
  /**
   * The floor for (e) before issue 22: the same, but the GET of a key that does not
   * exist (a nil reply). Kept to show how much receiving the record adds.
   */
  redisNilFloor: CanActivate | null;
  /**
   * Finds where `RedisBackend` filed the record of the route's key, once it is issued:
   * the floor GETs the same Redis key, whatever the backend's layout calls it.
   */
  locateRedisRecord(routeKey: string): Promise<void>;
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
    return { scenarios: [], redisFloor: null, redisNilFloor: null, pgFloor: null, locateRedisRecord: async () => undefined };
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
  // Counted by a subclass, not countCalls' Proxy: a trap on every lookup would be the
  // bench's cost, not the library's, and the floor pays nothing like it.
  const redisPrimary = new CountingRedisBackend(redis, { namespace: `${namespace}:primary:`, recordEncoding: BENCH_RECORD_ENCODING });
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

  // The record's Redis key around its hash, found once the route's key is issued.
  let beforeHash: string | null = null;
  let afterHash = '';
  const locateRedisRecord = async (routeKey: string) => {
    const keyHash = hash('sha256', routeKey, 'hex');
    for await (const keys of redis.scanIterator({ MATCH: `${namespace}:primary:*${keyHash}*`, COUNT: 1000 })) {
      for (const name of Array.isArray(keys) ? keys : [keys]) {
        if ((await redis.type(name)) !== 'string' || (await redis.get(name)) === keyHash) continue;
        const at = name.indexOf(keyHash);
        beforeHash = name.slice(0, at);
        afterHash = name.slice(at + keyHash.length);
      }
    }
    if (beforeHash === null) throw new Error('bench: the Redis route\'s record was not found');
  };
  const redisFloor: CanActivate = {
    async canActivate(context: ExecutionContext) {
      const key = context.getArgByIndex<{ headers: Record<string, string | undefined> }>(0).headers['x-api-key'] ?? '';
      const record = await redis.get(`${beforeHash}${hash('sha256', key, 'hex')}${afterHash}`);
      return record !== null;
    },
  };
  const redisNilFloor: CanActivate = {
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

  // (e) again with record encoding 2, beside it in one run: only when BENCH_CASES names it.
  const encoding2 = /\bredis-encoding2\b/.test(process.env.BENCH_CASES ?? '')
    ? new CountingRedisBackend(redis, { namespace: `${namespace}:encoding2:`, recordEncoding: 2 })
    : null;

  // (e) again without the decode memo (`decodeCacheSize: 0`): every request decodes, as
  // when more keys are in use than the memo holds. Only when BENCH_CASES names it.
  const noMemo = /\bredis-nomemo\b/.test(process.env.BENCH_CASES ?? '')
    ? new CountingRedisBackend(redis, { namespace: `${namespace}:nomemo:`, recordEncoding: BENCH_RECORD_ENCODING, decodeCacheSize: 0 })
    : null;

  // (e) with more keys in turn than the memo holds: every request decodes and files an
  // entry, evicting another. Only when BENCH_CASES names it.
  const churn = /\bredis-churn\b/.test(process.env.BENCH_CASES ?? '')
    ? new CountingRedisBackend(redis, { namespace: `${namespace}:churn:`, recordEncoding: BENCH_RECORD_ENCODING, decodeCacheSize: CHURN_MEMO })
    : null;

  const scenarios: GuardedScenario[] = [
    { route: 'cached', label: '(d) L1 + Redis cache + PostgreSQL, warm', ...guardFor(cached), primaryCalls: cachedPrimary.counts, close: closeOnce },
    {
      route: 'redis',
      label: `(e) RedisBackend, no L1 (recordEncoding ${BENCH_RECORD_ENCODING})`,
      ...guardFor(redisPrimary),
      primaryCalls: redisPrimary.counts,
      close: closeOnce,
    },
    { route: 'postgres', label: '(f) MikroOrmBackend on PostgreSQL, no cache', ...guardFor(direct.backend), primaryCalls: direct.counts, close: closeOnce },
    {
      route: 'postgres-pool',
      label: "(f') MikroOrmBackend on PostgreSQL, no cache, lookupPool",
      ...guardFor(directPooled.backend),
      primaryCalls: directPooled.counts,
      close: closeOnce,
    },
  ];
  if (encoding2) {
    scenarios.push({ route: 'redis-encoding2', label: '(e) RedisBackend, no L1 (recordEncoding 2)', ...guardFor(encoding2), primaryCalls: encoding2.counts, close: closeOnce });
  }
  if (noMemo) {
    scenarios.push({
      route: 'redis-nomemo',
      label: `(e) RedisBackend, no L1, no decode memo (decodeCacheSize 0, recordEncoding ${BENCH_RECORD_ENCODING})`,
      ...guardFor(noMemo),
      primaryCalls: noMemo.counts,
      close: closeOnce,
    });
  }
  if (churn) {
    scenarios.push({
      route: 'redis-churn',
      label: `(e) RedisBackend, no L1, ${CHURN_KEYS} keys in turn, decodeCacheSize ${CHURN_MEMO}: every request a memo miss`,
      ...guardFor(churn),
      primaryCalls: churn.counts,
      keyCount: CHURN_KEYS,
      close: closeOnce,
    });
  }
  return { scenarios, redisFloor, redisNilFloor, pgFloor, locateRedisRecord };
}
