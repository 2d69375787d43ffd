import { Logger } from '@nestjs/common';
import { CachedBackend } from '../cache/cached.backend.js';
import { L1Cache, type L1CacheOptions } from '../cache/l1-cache.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import { RedisCacheBackend } from './redis-cache.backend.js';
import { REDIS_CACHE_OPTIONS, type RedisCacheBackendOptions } from './redis-cache.options.js';
import type { RedisClusterClient } from './redis-cluster.client.js';
import { RedisInvalidationBus, type RedisInvalidationBusOptions, type RedisInvalidationClient } from './redis-invalidation.bus.js';

/**
 * How long the cached provider's L1 serves a key, in milliseconds, unless `l1.ttl`
 * says otherwise. It bounds how stale an instance can be while its pub/sub
 * subscription is down; with the subscription up, changes arrive in milliseconds
 * anyway. An L1 miss costs one Redis read (the L2), not a database read, so a short
 * TTL is cheap: one `MGET` per hot key per second per instance.
 */
export const REDIS_CACHED_L1_TTL_MS = 1_000;

/** Options of {@link RedisTwoTierBackend} and {@link createRedisTwoTierBackend}. */
export interface RedisTwoTierBackendOptions extends RedisCacheBackendOptions {
  /**
   * A node-redis v5 client (`createClient()` from `redis`) or cluster client
   * (`createCluster()`). Invalidations are published with it, and the provider subscribes
   * on a connection of its own (a duplicate, or on a cluster one node's) that it opens
   * and closes itself. Never closed by the provider. Create it with `disableOfflineQueue: true`
   * so that a write made while Redis is away does not wait for it.
   */
  redis: RedisInvalidationClient | RedisClusterClient;
  /**
   * The in-process L1's bounds and TTLs (see `CachedBackend`). Default `ttl` is
   * {@link REDIS_CACHED_L1_TTL_MS} (1 s), not the 10 s of a bare `CachedBackend`: an
   * instance that lost its subscription is then at most 1 s behind.
   */
  l1?: L1CacheOptions;
  /**
   * Options of the invalidation bus. Its channel is `<namespace>:invalidate`, with the
   * same `namespace` as the cache keys.
   */
  bus?: Omit<RedisInvalidationBusOptions, 'namespace'>;
  /**
   * How long {@link createRedisTwoTierBackend} waits for the subscription before it
   * resolves anyway, in milliseconds. A Redis that is down at start-up must not stop
   * the app: lookups then fall back to the database, and the subscription comes up
   * when Redis does. Default `2000`.
   */
  connectTimeoutMs?: number;
}

const OPTION_NAMES = optionNames<RedisTwoTierBackendOptions>({
  ...REDIS_CACHE_OPTIONS,
  redis: true,
  l1: true,
  bus: true,
  connectTimeoutMs: true,
});

const BUS_OPTION_NAMES = optionNames<NonNullable<RedisTwoTierBackendOptions['bus']>>({ publishTimeoutMs: true, connectionName: true });

/**
 * The cached provider: an in-process L1 (`CachedBackend`) over a shared Redis cache
 * (`RedisCacheBackend`, the L2) over your store, with a `RedisInvalidationBus` that
 * carries every key write to every instance's L1. Build it with
 * {@link createRedisTwoTierBackend}, which also waits for the subscription.
 *
 * A warm key costs no Redis command at all; a revoke, update, rotation or deletion on
 * any instance reaches every other instance in milliseconds, and within the L1 `ttl`
 * (1 s by default) while pub/sub is down.
 *
 * It owns only the bus's subscriber connection: `close()` (which Nest calls through
 * `onModuleDestroy` when it is the module's backend) ends it and stops the L2's
 * probes, and leaves the Redis client, the cache and the primary open.
 */
export class RedisTwoTierBackend extends CachedBackend {
  /** The shared Redis cache between the L1 and the primary. */
  readonly redisCache: RedisCacheBackend;
  /** The invalidation bus this provider opened, and closes. */
  readonly invalidationBus: RedisInvalidationBus;
  private readonly connectTimeoutMs: number;
  private readonly log = new Logger('ApiAuth');
  private closing: Promise<void> | undefined;

  constructor(options: RedisTwoTierBackendOptions) {
    if (options == null || typeof options !== 'object') throw new Error('nestjs-api-auth: RedisTwoTierBackend needs an options object.');
    // Checked here as a whole: the cache's own check would not know "redis", "l1", "bus".
    assertKnownOptions(options, OPTION_NAMES, { of: 'RedisTwoTierBackend' });
    const { redis, l1, bus: busOptions, connectTimeoutMs, ...cacheOptions } = options;
    if (busOptions !== undefined) {
      assertKnownOptions(busOptions, BUS_OPTION_NAMES, {
        of: 'RedisTwoTierBackend',
        path: 'bus.',
        misplaced: { namespace: 'is not used: the channel takes the top-level "namespace", the same as the cache keys.' },
      });
    }
    for (const method of ['publish', 'duplicate'] as const) {
      if (typeof (redis as unknown as Record<string, unknown> | undefined)?.[method] !== 'function') {
        throw new Error(`nestjs-api-auth: RedisTwoTierBackend option "redis" must be a node-redis client (missing "${method}").`);
      }
    }
    const timeout = connectTimeoutMs ?? 2_000;
    if (!Number.isSafeInteger(timeout) || timeout < 0) {
      throw new Error(`nestjs-api-auth: RedisTwoTierBackend option "connectTimeoutMs" must be a non-negative integer (got ${String(timeout)}).`);
    }
    const l1Options: L1CacheOptions = { ttl: REDIS_CACHED_L1_TTL_MS, ...l1 };
    // Checked before the Redis cache starts listening to the cache's events, so a bad
    // option leaves nothing attached to the user's cache.
    new L1Cache(l1Options);
    const redisCache = new RedisCacheBackend(cacheOptions);
    const bus = new RedisInvalidationBus(redis, { ...busOptions, namespace: cacheOptions.namespace ?? 'api-auth' });
    super(redisCache, { ...l1Options, bus });
    this.redisCache = redisCache;
    this.invalidationBus = bus;
    this.connectTimeoutMs = timeout;
  }

  /**
   * Waits until the invalidation subscription is live, or `connectTimeoutMs` has
   * passed (then logs a warning; the subscription keeps trying). Never rejects.
   */
  async connect(): Promise<this> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.connectTimeoutMs);
      timer.unref();
    });
    const connected = this.invalidationBus.connect().then(
      () => false,
      () => true,
    );
    const late = await Promise.race([connected, timedOut]);
    clearTimeout(timer);
    if (late && !this.invalidationBus.isListening) {
      this.log.warn(
        `The API key invalidation subscription is not up yet; until it is, another instance's key changes can take up to ${this.cache.ttlMs} ms to reach this one.`,
      );
    }
    return this;
  }

  /** Ends what this provider opened (the subscriber connection, the L2's probe timer). Idempotent. */
  override close(): Promise<void> {
    this.closing ??= (async () => {
      super.close();
      await this.invalidationBus.close();
      await this.redisCache.dispose();
    })();
    return this.closing;
  }

  /** Nest calls this on the module's backend at shutdown. */
  onModuleDestroy(): Promise<void> {
    return this.close();
  }
}

/**
 * Builds the cached provider (L1 + Redis cache + your store, with pub/sub invalidation)
 * and waits for its subscription, so the instance hears every invalidation from its
 * first request on:
 *
 * ```ts
 * const backend = await createRedisTwoTierBackend({ redis, cache, primary: new MikroOrmBackend(orm), ttl: 5 * 60_000 });
 * ```
 */
export function createRedisTwoTierBackend(options: RedisTwoTierBackendOptions): Promise<RedisTwoTierBackend> {
  return new RedisTwoTierBackend(options).connect();
}

/** @deprecated Renamed {@link RedisTwoTierBackend}: `RedisCachedBackend` read as `RedisCacheBackend`, the L2 alone. */
export const RedisCachedBackend = RedisTwoTierBackend;
/** @deprecated Renamed {@link RedisTwoTierBackend}. */
export type RedisCachedBackend = RedisTwoTierBackend;
/** @deprecated Renamed {@link RedisTwoTierBackendOptions}. */
export type RedisCachedBackendOptions = RedisTwoTierBackendOptions;
/** @deprecated Renamed {@link createRedisTwoTierBackend}. */
export const createRedisCachedBackend = createRedisTwoTierBackend;
