import KeyvRedis from '@keyv/redis';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { RedisCacheBackend } from 'nestjs-api-auth/redis';
import type { SampleBackend } from '../sample-backend.js';
import { createPostgresBackend } from './postgres.backend.js';

/**
 * `API_AUTH_BACKEND=cached`: keys in PostgreSQL (exactly as `postgres`), verified
 * through a Redis cache on `REDIS_URL`, reached through cache-manager and
 * `@keyv/redis` (what `@nestjs/cache-manager`'s `CACHE_MANAGER` is made of).
 *
 * Redis is optional at run time: while it is unreachable the backend answers from
 * PostgreSQL and logs one warning, then resumes caching when it is back. The app
 * opens the ORM and the Redis connection, so the app closes them; the backends never do.
 */
export async function createCachedBackend(): Promise<SampleBackend> {
  const postgres = await createPostgresBackend();
  if (!postgres.backend) throw new Error('The postgres sample backend did not provide a backend.');
  const store = new KeyvRedis({
    url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    socket: { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
  });
  const cache = createCache({ stores: [new Keyv({ store, namespace: process.env.REDIS_NAMESPACE ?? 'api-auth-cache' })] });
  const backend = new RedisCacheBackend({
    cache,
    primary: postgres.backend,
    // A found key is cached for 5 minutes (never past its expiry); an unknown one for
    // 30 seconds. Revocations through this app reach every instance at once anyway.
    ttl: 5 * 60_000,
    negativeTtl: 30_000,
  });
  return {
    backend,
    close: async () => {
      await backend.dispose();
      await cache.disconnect().catch(() => undefined);
      await postgres.close();
    },
  };
}
