import KeyvRedis from '@keyv/redis';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { createRedisTwoTierBackend } from 'nestjs-api-auth/redis';
import { createClient } from 'redis';
import type { SampleBackend } from '../sample-backend.js';
import { createPostgresBackend } from './postgres.backend.js';

/**
 * `API_AUTH_BACKEND=cached`: keys in PostgreSQL (exactly as `postgres`), verified
 * through the cached provider: an in-process L1, then a Redis cache on `REDIS_URL`
 * (cache-manager and `@keyv/redis`, what `@nestjs/cache-manager`'s `CACHE_MANAGER` is
 * made of), then PostgreSQL. Key changes reach every instance's L1 over Redis pub/sub.
 *
 * Redis is optional at run time: while it is unreachable the backend answers from
 * PostgreSQL and logs one warning, then resumes caching when it is back. The app
 * opens the ORM and the Redis connections, so the app closes them; the backend closes
 * only the pub/sub subscriber it opened itself.
 */
export async function createCachedBackend(): Promise<SampleBackend> {
  const postgres = await createPostgresBackend();
  if (!postgres.backend) throw new Error('The postgres sample backend did not provide a backend.');
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  // Keyv prefixes every cache key with it. The backend's own namespace (cache keys and
  // the pub/sub channel, "api-auth:invalidate") stays the default: a backend namespace
  // starting with "<Keyv namespace>:" would trip a Keyv quirk (set and mget would
  // address different keys).
  const namespace = process.env.REDIS_NAMESPACE ?? 'api-auth-cache';
  // One object per client: node-redis keeps (and may amend) the options it is given.
  const socket = () => ({ connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) });
  const store = new KeyvRedis({ url, socket: socket() });
  const cache = createCache({ stores: [new Keyv({ store, namespace })] });
  // Publishes invalidations; the backend subscribes on a duplicate of it. No offline
  // queue: a revoke made while Redis is away must not wait for it to come back.
  const redis = createClient({ url, socket: socket(), disableOfflineQueue: true });
  redis.on('error', () => undefined); // the backend logs outages once; node-redis would throw without a listener
  void redis.connect().catch(() => undefined); // reconnects on its own; the sample starts without Redis too

  const backend = await createRedisTwoTierBackend({
    redis,
    cache,
    primary: postgres.backend,
    // A found key stays in Redis for 5 minutes (never past its expiry), an unknown
    // one for 30 seconds; each instance keeps it in memory for 1 second at a time.
    ttl: 5 * 60_000,
    negativeTtl: 30_000,
  });
  return {
    backend,
    close: async () => {
      await backend.close();
      // close() waits for replies, which a connection still trying to reach Redis never gets.
      if (redis.isReady) await redis.close();
      else if (redis.isOpen) redis.destroy();
      await cache.disconnect().catch(() => undefined);
      await postgres.close();
    },
  };
}
