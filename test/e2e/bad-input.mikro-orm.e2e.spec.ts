import KeyvRedis from '@keyv/redis';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { afterAll, beforeAll } from 'vitest';
import { CachedBackend } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { RedisCacheBackend, RedisInvalidationBus } from 'nestjs-api-auth/redis';
import { describeBadInput } from '../fixtures/bad-input.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, REDIS_URL, uniqueNamespace } from '../fixtures/redis.js';

// Real PostgreSQL (a database of this file's own) and real Redis (a namespace of its own).
let db: TestDatabase;
let redis: Awaited<ReturnType<typeof connectRedis>>;
const cacheNamespace = uniqueNamespace('bad-input-stack');
const closers: Array<() => Promise<unknown>> = [];

async function backendOnPostgres(): Promise<MikroOrmBackend> {
  const orm: MikroORM = await initOrm(db.url);
  closers.push(() => orm.close());
  const backend = new MikroOrmBackend(orm);
  await backend.ensureSchema();
  return backend;
}

beforeAll(async () => {
  db = await createTestDatabase('bad_input');
  redis = await connectRedis({ disableOfflineQueue: true });
});
afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await deleteNamespace(redis, cacheNamespace);
  await redis?.close();
  await db?.drop();
});

describeBadInput('MikroOrmBackend (PostgreSQL)', async () => ({ backend: await backendOnPostgres() }));

// The production stack: an L1 kept in step over Redis pub/sub, a shared Redis cache,
// PostgreSQL behind both. Malformed input must stop before the first of them.
describeBadInput('CachedBackend over RedisCacheBackend over MikroOrmBackend', async () => {
  const store = new KeyvRedis(REDIS_URL);
  await store.getClient();
  closers.push(() => store.disconnect(true).catch(() => undefined));
  const cache = createCache({ stores: [new Keyv({ store, namespace: cacheNamespace.slice(0, -1) })] });
  const bus = await new RedisInvalidationBus(redis, { namespace: cacheNamespace.slice(0, -1) }).connect();
  closers.push(() => bus.close());
  const shared = new RedisCacheBackend({ cache, primary: await backendOnPostgres(), ttl: 60_000 });
  return { backend: new CachedBackend(shared, { bus }) };
});
