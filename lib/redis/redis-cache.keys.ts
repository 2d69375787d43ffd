import { createHash } from 'node:crypto';

/**
 * Version of the cache layout (key names and entry format). Bump it on any change:
 * entries of another version live under other names, so they are never misread and
 * simply expire.
 */
export const REDIS_CACHE_SCHEMA = 'v1';

/** The cache keys of one API key: its entry and its generation. */
export interface RedisCacheKeys {
  /** Identifies the key in this process (single-flight, pending invalidations). Not secret. */
  id: string;
  /** The cached record, or the "not found" marker. */
  entry: string;
  /**
   * A random value that every write replaces. An entry is valid only while it names
   * the current generation, which is what makes a late, stale fill harmless.
   */
  generation: string;
}

/**
 * Names the cache keys of a key hash. Redis never sees the hash itself: the id is a
 * SHA-256 of it, so key names (which show up in MONITOR, slow logs and keyspace
 * notifications) match no column of the primary. The `{id}` hash tag keeps an entry
 * and its generation in one Redis Cluster slot, so one MGET reads both.
 */
export function redisCacheKeys(namespace: string, keyHash: string): RedisCacheKeys {
  const id = createHash('sha256').update('nestjs-api-auth/redis-cache\0').update(keyHash).digest('base64url');
  return redisCacheKeysFromId(namespace, id);
}

/** Rebuilds the keys from an id kept by {@link redisCacheKeys} (for replaying invalidations). */
export function redisCacheKeysFromId(namespace: string, id: string): RedisCacheKeys {
  const base = `${namespace}:${REDIS_CACHE_SCHEMA}:{${id}}`;
  return { id, entry: `${base}:r`, generation: `${base}:g` };
}

/** The key a health probe writes and reads back. One per backend instance. */
export function redisCacheProbeKey(namespace: string, instance: string): string {
  return `${namespace}:${REDIS_CACHE_SCHEMA}:probe:${instance}`;
}
