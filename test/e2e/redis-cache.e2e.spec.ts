import KeyvRedis from '@keyv/redis';
import { CACHE_MANAGER, CacheModule } from '@nestjs/cache-manager';
import type { DynamicModule, INestApplication } from '@nestjs/common';
import { KeyvAdapter, type Cache } from 'cache-manager';
import { redisStore } from 'cache-manager-redis-yet';
import { Keyv } from 'keyv';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, MemoryBackend, type ApiKeyBackend } from 'nestjs-api-auth';
import { RedisCacheBackend } from 'nestjs-api-auth/redis';
import { bootApp, type Adapter } from '../fixtures/app.js';
import { CountingBackend } from '../fixtures/counting.backend.js';
import { connectRedis, deleteNamespace, REDIS_URL, uniqueNamespace } from '../fixtures/redis.js';
import { countingCache } from '../fixtures/redis-cache.fixtures.js';

type RedisYetStore = Awaited<ReturnType<typeof redisStore>>;

/** What one app instance's wiring exposes to the test. */
interface Instance {
  app: INestApplication;
  service: ApiKeyService;
  cacheReads: () => number;
}

/**
 * The wiring a user writes: `CacheModule.registerAsync` gives `CACHE_MANAGER`, and
 * `ApiAuthModule.forRootAsync` puts a `RedisCacheBackend` over it in front of the
 * primary. Every instance of a fleet must configure its cache the same way (store
 * and namespace), or they would not see each other's invalidations.
 */
const WIRINGS: Array<{ name: string; cacheModule: (namespace: string, opened: RedisYetStore[]) => DynamicModule }> = [
  {
    name: '@keyv/redis',
    cacheModule: (namespace) =>
      CacheModule.registerAsync({
        useFactory: () => ({ stores: [new KeyvRedis(REDIS_URL)], namespace }),
      }),
  },
  {
    name: 'cache-manager-redis-yet',
    cacheModule: (namespace, opened) =>
      CacheModule.registerAsync({
        useFactory: async () => {
          const store = await redisStore({ url: REDIS_URL });
          store.client.on('error', () => undefined);
          opened.push(store);
          return { stores: [new Keyv({ store: new KeyvAdapter(store), namespace })] };
        },
      }),
  },
];

describe.each(WIRINGS)('Two Nest apps sharing one Redis cache through $name', (wiring) => {
  const namespace = uniqueNamespace(`redis-cache-e2e-${wiring.name.replace(/\W+/g, '-')}`);
  const redisYetStores: RedisYetStore[] = [];
  // One database behind both instances, as in production.
  const primary = new CountingBackend(new MemoryBackend());
  let a: Instance;
  let b: Instance;

  async function boot(adapter: Adapter): Promise<Instance> {
    let counts = { mget: 0 };
    const app = await bootApp(adapter, [
      ApiAuthModule.forRootAsync({
        imports: [wiring.cacheModule(namespace, redisYetStores)],
        inject: [CACHE_MANAGER],
        useFactory: (cache: Cache) => {
          const counted = countingCache(cache);
          counts = counted.counts;
          return {
            prefix: 'e2e_',
            trackUsage: false,
            // timeoutMs: reads are counted, and a loaded CI machine must not turn a late reply into a primary read.
            backend: new RedisCacheBackend({ cache: counted.cache, primary: primary as ApiKeyBackend, ttl: 300_000, timeoutMs: 2_000 }),
          };
        },
      }),
    ]);
    return { app, service: app.get(ApiKeyService), cacheReads: () => counts.mget };
  }

  const get = (instance: Instance, path: string, key: string) =>
    request(instance.app.getHttpServer()).get(path).set('X-API-Key', key);

  beforeAll(async () => {
    a = await boot('express');
    b = await boot('fastify');
  });

  afterAll(async () => {
    await a?.app.close();
    await b?.app.close();
    // redis-yet's store has no disconnect for cache-manager to call: the app closes its client.
    for (const store of redisYetStores) await store.client.quit();
    const raw = await connectRedis();
    await deleteNamespace(raw, namespace);
    await raw.close();
  });

  it('revoked through one instance, the key is refused by the other at once', async () => {
    const { key, apiKey } = await a.service.issue({ ownerId: 'tenant-1', name: 'shared' });
    await get(b, '/t/me', key).expect(200);
    primary.reset();
    const res = await get(b, '/t/me', key).expect(200);
    expect(res.body.ownerId).toBe('tenant-1');
    expect(primary.calls('getByHash')).toBe(0); // served from Redis

    await a.service.revoke(apiKey.id);
    const refused = await get(b, '/t/me', key).expect(401);
    expect(refused.body.code).toBe('revoked_api_key');
    expect((await get(a, '/t/me', key).expect(401)).body.code).toBe('revoked_api_key');
  });

  it('a scope change through one instance applies on the other at once', async () => {
    const { key, apiKey } = await a.service.issue({ ownerId: 'tenant-2', name: 'scoped', scopes: ['things:read'] });
    await get(b, '/t/write', key).expect(403);
    await a.service.update(apiKey.id, { scopes: ['things:read', 'things:write'] });
    await get(b, '/t/write', key).expect(200);
  });

  it('malformed keys through the guard touch neither Redis nor the primary', async () => {
    const { key } = await a.service.issue({ ownerId: 'tenant-3', name: 'template' });
    const reads = b.cacheReads();
    primary.reset();
    const tampered = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    for (let i = 0; i < 100; i++) {
      const res = await get(b, '/t/me', i % 2 ? tampered : `${key}x`).expect(401);
      expect(res.body.code).toBe('invalid_api_key');
    }
    expect(b.cacheReads()).toBe(reads);
    expect(primary.totalCalls).toBe(0);
  });
});
