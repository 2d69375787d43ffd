// Entry "nestjs-api-auth/redis". Optional peers: `redis` (node-redis) and a cache-manager Cache.
export { RedisInvalidationBus, type RedisInvalidationBusOptions, type RedisInvalidationClient, type RedisInvalidationSubscriber } from './redis-invalidation.bus.js';
export { RedisBackend, type LayoutMigrationOptions, type LayoutMigrationReport, type RedisBackendOptions, type RedisCommandClient } from './redis.backend.js';
export { RedisCacheBackend, type RedisCacheBackendOptions, type RedisCacheInvalidation, type RedisCacheManager } from './redis-cache.backend.js';
export { RedisUsageCoordinator, type RedisUsageCoordinatorOptions } from './redis-usage.coordinator.js';
export {
  createRedisCachedBackend,
  createRedisTwoTierBackend,
  RedisCachedBackend,
  RedisTwoTierBackend,
  REDIS_CACHED_L1_TTL_MS,
  type RedisCachedBackendOptions,
  type RedisTwoTierBackendOptions,
} from './redis-two-tier.backend.js';
export { RedisRateLimiter, type RedisRateLimiterOptions } from './redis.rate-limiter.js';
export { isRedisCluster, type RedisClient, type RedisClusterClient, type RedisClusterNode } from './redis-cluster.client.js';
