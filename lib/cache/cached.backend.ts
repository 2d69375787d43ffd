import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { cloneApiKey, type ApiKey } from '../api-key.interface.js';
import type { ApiKeyBackend, ApiKeyChanges, ListAllOptions, ListByOwnerOptions, PurgeOptions, UpdateOptions } from '../backends/backend.interface.js';
import type { CachedLookup } from './cached-lookup.interface.js';
import type { ApiKeyInvalidation, ApiKeyInvalidationBus } from './invalidation-bus.interface.js';
import { invalidationTag } from './invalidation-tag.js';
import { L1Cache, type CachedApiKey, type L1CacheOptions } from './l1-cache.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';

/** Options of {@link CachedBackend}: the L1's bounds and TTLs, and the bus that keeps a fleet in step. */
export interface CachedBackendOptions extends L1CacheOptions {
  /**
   * Carries invalidations between instances (e.g. `RedisInvalidationBus` from
   * `nestjs-api-auth/redis`). Without one, each instance only sees its own writes at
   * once and other instances' writes after `ttl`: fine for a single instance, not for
   * a fleet. The backend subscribes to it but never closes it.
   */
  bus?: ApiKeyInvalidationBus;
}

/** What {@link CachedBackend.invalidate} drops, here and on every instance. */
export interface CacheInvalidation {
  /** Ids of changed keys. Enough for any key an instance holds: prefer ids. */
  ids?: readonly string[];
  /**
   * Hashes of keys that may now exist (inserted behind the library's back, say), so
   * that instances which remembered them as unknown ask again. Dropped here by hash;
   * the other instances are sent their invalidation tags, never the hashes.
   */
  hashes?: readonly string[];
  /** Drop everything. */
  all?: boolean;
}

/** Every option of {@link CachedBackendOptions}: the L1's and the bus. */
const OPTION_NAMES = optionNames<CachedBackendOptions>({
  maxEntries: true,
  maxNegativeEntries: true,
  ttl: true,
  negativeTtl: true,
  now: true,
  bus: true,
});

/**
 * Puts an in-process L1 cache in front of any backend. Lookups by hash are answered
 * from memory (positive and negative entries), concurrent misses for one hash share a
 * single primary read, and every write through it drops the key here and, over the
 * bus, on every other instance. Reads by id and listings go to the primary: they are
 * not the hot path and must be fresh.
 *
 * ```ts
 * const backend = new CachedBackend(new MikroOrmBackend(orm), { bus: new RedisInvalidationBus(redis) });
 * ```
 *
 * `lastUsedAt` on cached records lags by up to `ttl`: usage writes go straight to the
 * primary and do not invalidate, or every interval would flush the cache.
 */
export class CachedBackend implements ApiKeyBackend, CachedLookup {
  /** The in-process cache; exposed for metrics (`size`) and tests. */
  readonly cache: L1Cache;
  /** Optional in the contract, so present only when the primary has it. */
  readonly countByOwner?: (ownerId: string) => Promise<number>;
  /** Optional in the contract, so present only when the primary has it; always fresh. */
  readonly listByIssuer?: (issuerId: string) => AsyncIterable<ApiKey>;
  /** Present only when the primary has it; drops the purged keys here and on every instance. */
  readonly purge?: (options: PurgeOptions) => Promise<number>;
  /** Present only when the primary has it; drops the key and the new hash's negative entry everywhere. */
  readonly replaceHash?: (id: string, fromHash: string, toHash: string) => Promise<boolean>;
  /** Optional in the contract, so present only when the primary has it; always fresh. */
  readonly listAll?: (options: ListAllOptions) => AsyncIterable<ApiKey>;
  private readonly logger = new Logger('ApiAuth');
  private readonly bus: ApiKeyInvalidationBus | undefined;
  private readonly inflight = new Map<string, Promise<ApiKey | null>>();
  /** Identifies this instance's messages, so it can skip their echo. */
  private readonly origin = randomUUID();
  private readonly unsubscribers: Array<() => void> = [];
  /**
   * Bumped by every invalidation. A primary read that started before one may carry the
   * old record, so its result is returned but not cached.
   */
  private generation = 0;
  private publishFailing = false;

  constructor(
    /** The store behind the cache. Never closed by this class. */
    readonly primary: ApiKeyBackend,
    options: CachedBackendOptions = {},
  ) {
    assertKnownOptions(options, OPTION_NAMES, { of: 'CachedBackend' });
    const { bus, ...l1 } = options;
    this.cache = new L1Cache(l1);
    this.bus = bus;
    if (primary.countByOwner) this.countByOwner = (ownerId) => primary.countByOwner!(ownerId);
    if (primary.listByIssuer) this.listByIssuer = (issuerId) => primary.listByIssuer!(issuerId);
    if (primary.purge) this.purge = (options) => purgeThrough(primary, options, (change) => this.invalidate(change));
    if (primary.replaceHash) {
      this.replaceHash = async (id, fromHash, toHash) => {
        try {
          return await primary.replaceHash!(id, fromHash, toHash);
        } finally {
          // By id for the record under the old hash; by hash for the new one, which the
          // lookup that led here has just remembered as unknown.
          await this.invalidate({ ids: [id], hashes: [toHash] });
        }
      };
    }
    if (primary.listAll) this.listAll = (listOptions) => primary.listAll!(listOptions);
    if (this.bus) {
      this.unsubscribers.push(
        this.bus.subscribe((message) => {
          if (message.origin !== this.origin) this.apply(message);
        }),
        // Messages sent while we were disconnected are lost: any entry may be stale.
        this.bus.onReconnect(() => this.apply({ all: true })),
      );
    }
  }

  peekByHash(keyHash: string): CachedApiKey | null | undefined {
    return this.cache.get(keyHash);
  }

  forgetHash(keyHash: string): void {
    this.cache.deleteHash(keyHash);
  }

  async getByHash(keyHash: string): Promise<ApiKey | null> {
    const hit = this.cache.get(keyHash);
    if (hit !== undefined) return hit === null ? null : cloneApiKey(hit.record);
    const record = await this.load(keyHash);
    // Waiters of one read share its result; each gets its own copy.
    return record ? cloneApiKey(record) : null;
  }

  /**
   * Always from the primary. When it shows the key revoked, disabled or gone, this
   * instance's copy goes too: another instance changed it and its message may not have
   * arrived, and a caller that acts on this read (`revoke` or `disable` finding the key
   * already so) must not return while this instance still serves the key.
   */
  async getById(id: string): Promise<ApiKey | null> {
    const record = await this.primary.getById(id);
    if (record === null || record.revokedAt !== null || record.disabledAt != null) this.apply({ ids: [id] });
    return record;
  }

  async create(apiKey: ApiKey): Promise<ApiKey> {
    try {
      return await this.primary.create(apiKey);
    } finally {
      // Drops a negative entry for the hash, here and (by tag) elsewhere. Also after a
      // failure: a create that timed out may still have been stored.
      await this.invalidate({ ids: [apiKey.id], hashes: [apiKey.keyHash] });
    }
  }

  async update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    try {
      return await this.primary.update(id, changes, options);
    } finally {
      // The id finds the key wherever it is held. No tag: the key already existed, and
      // its create's tag dropped the entries that remembered its hash as unknown.
      await this.invalidate({ ids: [id] });
    }
  }

  async delete(id: string): Promise<void> {
    try {
      await this.primary.delete(id);
    } finally {
      await this.invalidate({ ids: [id] });
    }
  }

  listByOwner(ownerId: string, options?: ListByOwnerOptions): AsyncIterable<ApiKey> {
    return this.primary.listByOwner(ownerId, options);
  }

  recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    return this.primary.recordUsage(id, usedAt, staleBefore);
  }

  /**
   * Drops keys from this L1 and tells the other instances to do the same. Call it
   * after changing keys behind the library's back (a migration, a SQL fix): name
   * changed keys by id, and new keys by hash. Rejects only a malformed argument: if
   * the bus fails, the others catch up within `ttl`.
   */
  async invalidate(change: CacheInvalidation): Promise<void> {
    const { ids = [], hashes = [], all = false } = checkedChange(change);
    this.apply({ ids, all });
    // Here by exact hash; the other instances are sent tags.
    for (const hash of hashes) this.cache.deleteHash(hash);
    if (!this.bus) return;
    try {
      await this.bus.publish({ ids, tags: hashes.map(invalidationTag), all, origin: this.origin });
      if (this.publishFailing) {
        this.publishFailing = false;
        this.logger.log('Publishing API key invalidations works again.');
      }
    } catch (error) {
      if (!this.publishFailing) {
        this.publishFailing = true;
        // A custom bus may put the payload in its error: the message holds no hash, but
        // the redaction keeps whatever else the error carries out of the log too.
        const reason = safeErrorMessage(error);
        this.logger.warn(
          `Could not publish an API key invalidation; other instances may serve the old record for up to ${this.cache.ttlMs} ms: ${reason}`,
        );
      }
    }
  }

  /** Drops every entry here and on every instance. */
  invalidateAll(): Promise<void> {
    return this.invalidate({ all: true });
  }

  /** Stops listening to the bus. Closes neither the bus nor the primary: whoever opened them closes them. */
  close(): void {
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
  }

  private apply(message: ApiKeyInvalidation): void {
    this.generation++;
    // New readers must not join a read that may return what was just invalidated.
    this.inflight.clear();
    if (message.all) {
      this.cache.clear();
      return;
    }
    for (const id of message.ids ?? []) this.cache.deleteId(id);
    for (const tag of message.tags ?? []) this.cache.deleteTag(tag);
  }

  /** One primary read per hash at a time; fills the cache unless an invalidation overtook it. */
  private load(keyHash: string): Promise<ApiKey | null> {
    const pending = this.inflight.get(keyHash);
    if (pending) return pending;
    const generation = this.generation;
    // The L1 bound counts from here: a read that started before a write elsewhere must
    // not be served longer than ttl past it, even if that write's message is lost.
    const readAt = this.cache.time();
    let read: Promise<ApiKey | null>;
    try {
      read = this.primary.getByHash(keyHash);
    } catch (error) {
      read = Promise.reject(error);
    }
    const shared = read.then(
      (record) => {
        if (this.inflight.get(keyHash) === shared) this.inflight.delete(keyHash);
        if (generation === this.generation) {
          // A primary that answers with another key's record is broken; the service
          // refuses it, and the cache must not file it under this hash.
          if (record == null) this.cache.setMissing(keyHash);
          else if (record.keyHash === keyHash) this.cache.set(record, readAt);
        }
        return record ?? null;
      },
      (error: unknown) => {
        // Failures are never cached: an outage must not turn into "unknown key".
        if (this.inflight.get(keyHash) === shared) this.inflight.delete(keyHash);
        throw error;
      },
    );
    this.inflight.set(keyHash, shared);
    return shared;
  }
}

/**
 * Runs the primary's purge and drops what it deleted: by id when the primary reports
 * them (`onDeleted`), everything when it deleted some without saying which.
 */
export async function purgeThrough(
  primary: ApiKeyBackend,
  options: PurgeOptions,
  invalidate: (change: CacheInvalidation) => Promise<void>,
): Promise<number> {
  const ids: string[] = [];
  const deleted = await primary.purge!({
    ...options,
    onDeleted: (records) => {
      for (const record of records) ids.push(record.id);
      options.onDeleted?.(records);
    },
  });
  if (deleted > 0) await invalidate(ids.length >= deleted ? { ids } : { all: true });
  return deleted;
}

/** `change` itself, once it is known to be a {@link CacheInvalidation}; a `TypeError` otherwise. */
function checkedChange(change: CacheInvalidation): CacheInvalidation {
  const strings = (value: unknown) =>
    value === undefined || (Array.isArray(value) && value.every((item) => typeof item === 'string'));
  const valid =
    change !== null &&
    typeof change === 'object' &&
    strings(change.ids) &&
    strings(change.hashes) &&
    (change.all === undefined || typeof change.all === 'boolean');
  if (!valid) throw new TypeError('nestjs-api-auth: invalidate() takes { ids?: string[], hashes?: string[], all?: boolean }.');
  return change;
}

/** Wraps `backend` in a {@link CachedBackend}: `withL1Cache(new MikroOrmBackend(orm), { bus })`. */
export function withL1Cache(backend: ApiKeyBackend, options?: CachedBackendOptions): CachedBackend {
  return new CachedBackend(backend, options);
}
