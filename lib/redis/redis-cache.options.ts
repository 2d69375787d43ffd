import type { LoggerService } from '@nestjs/common';
import type { ApiKeyBackend } from '../backends/backend.interface.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import { REDIS_CACHE_SCHEMA } from './redis-cache.keys.js';

/**
 * The part of a cache-manager `Cache` (v6 or v7, what `@nestjs/cache-manager`'s
 * `CACHE_MANAGER` gives) that {@link RedisCacheBackend} uses. Declared here rather than
 * imported so the library's types do not depend on one cache-manager major version.
 */
export interface RedisCacheManager {
  mget(keys: string[]): Promise<unknown[]>;
  set(key: string, value: string, ttl?: number): Promise<unknown>;
  del(key: string): Promise<unknown>;
  /** cache-manager reports a failed `mget`/`set`/`del` as an event, not a rejection. */
  on?(event: any, listener: (...args: any[]) => void): unknown;
  off?(event: any, listener: (...args: any[]) => void): unknown;
  /** The Keyv stores; their `error` events are how most store failures surface. */
  readonly stores?: ReadonlyArray<{
    on?(event: any, listener: (...args: any[]) => void): unknown;
    off?(event: any, listener: (...args: any[]) => void): unknown;
    /** Keyv's namespace, checked against the backend's own at construction. */
    readonly namespace?: unknown;
    /** Keyv's `useKeyPrefix`: `false` turns its namespace prefix off. */
    readonly useKeyPrefix?: unknown;
  }>;
}

/** What one write changed, for whoever keeps another copy (an L1 cache, a pub/sub bus). */
export interface RedisCacheInvalidation {
  /** Ids of the written keys. */
  ids: string[];
  /**
   * Key hashes of the written keys (never plaintext keys), for this process's own
   * caches. Do not log them, and do not publish them: tell other instances the ids
   * and `invalidationTag(hash)` (what `CachedBackend` and its bus send).
   */
  hashes: string[];
}

/** Options of {@link RedisCacheBackend}. */
export interface RedisCacheBackendOptions {
  /**
   * A cache-manager `Cache` over one shared store, e.g. `@keyv/redis`, or
   * `cache-manager-redis-yet` through cache-manager's `KeyvAdapter`. Give it to this
   * backend alone (or at least a namespace of its own): the backend reads its error
   * events. It is never closed by the backend.
   */
  cache: RedisCacheManager;
  /** The store of record (MikroORM, memory, your own). Every write goes here first. Never closed by the backend. */
  primary: ApiKeyBackend;
  /**
   * How long a found key stays cached, in milliseconds (as in cache-manager). An entry
   * never outlives the key's `expiresAt`. Writes through this backend invalidate at
   * once; `lastUsedAt` on a cached record may lag by up to this long.
   */
  ttl: number;
  /**
   * How long "no such key" is remembered, in milliseconds, so a flood of unknown keys
   * costs one primary read per key per this interval. Creating a key through this
   * backend clears its negative entry at once. Default `min(30000, ttl)`.
   */
  negativeTtl?: number;
  /**
   * How long any one cache operation may take, in milliseconds, before the backend
   * treats the cache as down and answers from the primary. Default `150`.
   */
  timeoutMs?: number;
  /**
   * While the cache is down, how often one request checks whether it is back, in
   * milliseconds; the others go straight to the primary meanwhile. Default `1000`.
   */
  retryIntervalMs?: number;
  /**
   * Prefix of every cache key this backend writes (after the store's own namespace).
   * Two deployments sharing a Redis need different namespaces. Default `"api-auth"`.
   */
  namespace?: string;
  /** Where outage and recovery messages go. Default a Nest `Logger` with context `"ApiAuth"`. */
  logger?: LoggerService;
  /**
   * What a write (create, update, revoke, disable, delete, `replaceHash`) does when it cannot
   * first mark the key as being written in Redis, so that no instance serves the cached
   * copy while and after the primary changes (docs/redis-cache.md, "Writes while Redis is
   * unreachable"). This instance cannot tell a Redis that is down for everyone from one
   * it alone cannot reach.
   *
   * - `'refuse'` (default): the write rejects with `BackendUnavailableError` (503 on the
   *   management routes) and the primary is not touched. Nothing changed; retry, on
   *   another instance or once Redis answers. No instance ever accepts the old record
   *   beyond the L1 bound (the L1 `ttl` when a bus message is lost).
   * - `'replay'`: the write is made in the primary anyway and its invalidation replayed
   *   once this instance reaches Redis again (the behaviour before this option). Other
   *   instances that can reach Redis may serve the old record until this instance is
   *   back and its next probe succeeds (within `retryIntervalMs` of that), or for up to
   *   `ttl` if it never is (it stops first); plus their L1 `ttl` on top.
   *
   * A create is refused too: a new key cannot be served stale (at worst another instance
   * refuses it for `negativeTtl`), but a rotation refused at its second step would leave
   * its replacement stored, and every retry would then answer "already rotated".
   */
  unreachableWrites?: 'refuse' | 'replay';
  /**
   * How long a write may take from marking the key in Redis to the primary's answer, in
   * milliseconds. A write still unanswered then rejects with `BackendUnavailableError`
   * (it may still be applied: read the key to see). The mark (a lease) holds for this
   * long plus 1 s, so a write is acknowledged only while every reader still ignores the
   * cache for that key. Default `5000`.
   */
  writeTimeoutMs?: number;
  /**
   * Called synchronously after every write reached the primary, before the Redis
   * invalidation, even while Redis is down. The seam for an in-process cache or an
   * invalidation bus of your own. Exceptions are logged and ignored.
   */
  onInvalidate?: (invalidation: RedisCacheInvalidation) => void;
}

/** Options after defaults and validation. */
export interface ResolvedRedisCacheOptions {
  ttl: number;
  negativeTtl: number;
  timeoutMs: number;
  retryIntervalMs: number;
  namespace: string;
  unreachableWrites: 'refuse' | 'replay';
  writeTimeoutMs: number;
}

/** Every option of {@link RedisCacheBackendOptions}; the cached provider's options extend it. */
export const REDIS_CACHE_OPTIONS = {
  cache: true,
  primary: true,
  ttl: true,
  negativeTtl: true,
  timeoutMs: true,
  retryIntervalMs: true,
  namespace: true,
  logger: true,
  onInvalidate: true,
  unreachableWrites: true,
  writeTimeoutMs: true,
} as const satisfies { readonly [K in keyof RedisCacheBackendOptions]-?: true };

const REDIS_CACHE_OPTION_NAMES = optionNames<RedisCacheBackendOptions>(REDIS_CACHE_OPTIONS);

const NAMESPACE = /^[A-Za-z0-9_.:-]{1,64}$/;
const PRIMARY_METHODS = ['getByHash', 'getById', 'create', 'update', 'delete', 'listByOwner', 'recordUsage'] as const;

function fail(option: string, expectation: string, value: unknown): never {
  const shown = typeof value === 'string' || typeof value === 'number' ? JSON.stringify(value) : typeof value;
  throw new Error(`nestjs-api-auth: RedisCacheBackend option "${option}" ${expectation} (got ${shown}).`);
}

function positiveInteger(option: string, value: unknown, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    fail(option, 'must be a positive integer of milliseconds', value);
  }
  return value;
}

/**
 * Refuses a Keyv namespace that starts the backend's cache keys. Keyv prefixes its
 * namespace onto every key of `mget` (its `getMany`), but onto a `set` or `del` key only
 * when the key does not already start with `<namespace>:`. Keys starting that way are
 * written under one Redis key and read under another: nothing cached would be found,
 * and every invalidation would read back as lost ("did not keep an invalidation"),
 * keeping the cache off for good.
 */
function assertKeyvNamespaceApart(cache: RedisCacheManager, namespace: string): void {
  const keys = `${namespace}:${REDIS_CACHE_SCHEMA}:`;
  for (const store of cache.stores ?? []) {
    const keyv = store.namespace;
    if (typeof keyv !== 'string' || keyv === '' || store.useKeyPrefix === false || !keys.startsWith(`${keyv}:`)) continue;
    throw new Error(
      `nestjs-api-auth: RedisCacheBackend option "cache" has the Keyv namespace ${JSON.stringify(keyv)}, which starts the backend's ` +
        `cache keys (${JSON.stringify(`${keys}...`)}); Keyv would write and read those under different Redis keys. Give the cache ` +
        `a namespace of its own (e.g. ${JSON.stringify(`${keyv}-cache`)}), or the backend another "namespace".`,
    );
  }
}

function writeMode(value: unknown): 'refuse' | 'replay' {
  if (value === undefined) return 'refuse';
  if (value !== 'refuse' && value !== 'replay') fail('unreachableWrites', 'must be "refuse" or "replay"', value);
  return value;
}

/** Checks the options once, at construction, naming the first bad one. */
export function resolveRedisCacheOptions(options: RedisCacheBackendOptions): ResolvedRedisCacheOptions {
  if (options == null || typeof options !== 'object') throw new Error('nestjs-api-auth: RedisCacheBackend needs an options object.');
  assertKnownOptions(options, REDIS_CACHE_OPTION_NAMES, { of: 'RedisCacheBackend' });
  const cache = options.cache as unknown as Record<string, unknown> | undefined;
  for (const method of ['mget', 'set', 'del']) {
    if (typeof cache?.[method] !== 'function') fail('cache', `must be a cache-manager Cache (missing "${method}")`, cache);
  }
  const primary = options.primary as unknown as Record<string, unknown> | undefined;
  for (const method of PRIMARY_METHODS) {
    if (typeof primary?.[method] !== 'function') fail('primary', `must implement ApiKeyBackend (missing "${method}")`, primary);
  }
  if (options.onInvalidate !== undefined && typeof options.onInvalidate !== 'function') {
    fail('onInvalidate', 'must be a function', options.onInvalidate);
  }
  const namespace = options.namespace ?? 'api-auth';
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    fail('namespace', 'must be 1-64 letters, digits or "_", ".", ":", "-"', namespace);
  }
  assertKeyvNamespaceApart(options.cache, namespace);
  const ttl = positiveInteger('ttl', options.ttl);
  return {
    ttl,
    negativeTtl: positiveInteger('negativeTtl', options.negativeTtl, Math.min(30_000, ttl)),
    timeoutMs: positiveInteger('timeoutMs', options.timeoutMs, 150),
    retryIntervalMs: positiveInteger('retryIntervalMs', options.retryIntervalMs, 1_000),
    namespace,
    unreachableWrites: writeMode(options.unreachableWrites),
    writeTimeoutMs: positiveInteger('writeTimeoutMs', options.writeTimeoutMs, 5_000),
  };
}
