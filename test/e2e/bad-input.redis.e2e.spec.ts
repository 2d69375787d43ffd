import KeyvRedis from '@keyv/redis';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { afterAll, beforeAll } from 'vitest';
import { MemoryBackend } from 'nestjs-api-auth';
import { RedisBackend, RedisCacheBackend } from 'nestjs-api-auth/redis';
import { describeBadInput } from '../fixtures/bad-input.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

// Real Redis at REDIS_URL, one namespace per backend, removed afterwards.
let redis: Awaited<ReturnType<typeof connectRedis>>;
const primaryNamespace = uniqueNamespace('bad-input-redis');
const cacheNamespace = uniqueNamespace('bad-input-redis-cache');
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await connectRedis({ disableOfflineQueue: true });
});
afterAll(async () => {
  for (const close of closers.splice(0)) await close();
  await deleteNamespace(redis, primaryNamespace);
  await deleteNamespace(redis, cacheNamespace);
  await redis.close();
});

describeBadInput('RedisBackend', () => ({ backend: new RedisBackend(redis, { namespace: primaryNamespace }) }));

describeBadInput('RedisCacheBackend (@keyv/redis) over MemoryBackend', async () => {
  const store = new KeyvRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await store.getClient();
  closers.push(() => store.disconnect(true).catch(() => undefined));
  const cache = createCache({ stores: [new Keyv({ store, namespace: cacheNamespace.slice(0, -1) })] });
  return { backend: new RedisCacheBackend({ cache, primary: new MemoryBackend(), ttl: 60_000 }) };
});
