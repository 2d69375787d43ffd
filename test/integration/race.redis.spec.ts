import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend, type ApiKeyService } from 'nestjs-api-auth';
import { RedisBackend, RedisCacheBackend } from 'nestjs-api-auth/redis';
import { describeRaces, raceService, withLatency } from '../fixtures/race-suite.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { keyvRedisVariant } from '../fixtures/redis-cache.fixtures.js';

// Real Redis, a key prefix of this file's own; every client is closed and every key deleted.
const prefix = uniqueNamespace('race');
let admin: Awaited<ReturnType<typeof connectRedis>>;

beforeAll(async () => {
  admin = await connectRedis();
});
afterAll(async () => {
  await deleteNamespace(admin, prefix);
  await admin.close();
});

// Two instances, each with its own connection, over Redis as the store of record.
for (const layout of [2, 3] as const) {
  describeRaces(layout === 2 ? 'RedisBackend, two clients' : 'RedisBackend layout 3, two clients', async () => {
    const clients = [await connectRedis(), await connectRedis()];
    const namespace = `${prefix}primary${layout}:`;
    return {
      one: raceService(new RedisBackend(clients[0]!, { namespace, layout })),
      two: raceService(new RedisBackend(clients[1]!, { namespace, layout })),
      propagationMs: 0,
      close: async () => {
        for (const client of clients) await client.close();
      },
    };
  });
}

// Two instances, each with its own cache-manager connection to one shared Redis cache,
// over one store of record (a MemoryBackend given a network's latency).
describeRaces('RedisCacheBackend over MemoryBackend, two caches', async () => {
  const store = new MemoryBackend();
  const caches = [await keyvRedisVariant.create(`${prefix}cache`), await keyvRedisVariant.create(`${prefix}cache`)];
  // Generous operation timeout: a slow CI machine must not turn the cache off mid-race.
  const backends = caches.map(
    (c) => new RedisCacheBackend({ cache: c.cache, primary: withLatency(store), ttl: 600_000, timeoutMs: 2_000, namespace: 'race' }),
  );
  return {
    one: raceService(backends[0]!),
    two: raceService(backends[1]!),
    propagationMs: 0,
    close: async () => {
      for (const backend of backends) await backend.dispose();
      for (const cache of caches) await cache.close();
    },
  };
});

describe('RedisCacheBackend under concurrent writes to one key from two instances', () => {
  it('keeps the cache up (they are not an outage) and ends with the last write visible on both', async () => {
    const store = new MemoryBackend();
    const logger = new CapturingLogger();
    const caches = [await keyvRedisVariant.create(`${prefix}contention`), await keyvRedisVariant.create(`${prefix}contention`)];
    const backends = caches.map(
      (c) => new RedisCacheBackend({ cache: c.cache, primary: withLatency(store), ttl: 600_000, timeoutMs: 2_000, namespace: 'contention', logger }),
    );
    try {
      const [one, two] = backends.map(raceService) as [ApiKeyService, ApiKeyService];
      const { key, apiKey } = await one.issue({ ownerId: 'o', name: 'contended' });
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 ? two : one).update(apiKey.id, { name: `n-${round}-${i}` })),
        );
        // Each instance fills its view, then the other writes once more: the fill must be voided.
        await Promise.all([one.authenticate(key), two.authenticate(key)]);
        await two.update(apiKey.id, { name: `last-${round}` });
        for (const service of [one, two]) {
          const result = await service.authenticate(key);
          expect(result.ok && result.apiKey.name).toBe(`last-${round}`);
        }
      }
      expect(backends.every((b) => b.cacheAvailable)).toBe(true);
      expect(logger.lines).toEqual([]);
    } finally {
      for (const backend of backends) await backend.dispose();
      for (const cache of caches) await cache.close();
    }
  });
});
