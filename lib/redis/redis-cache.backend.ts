import { Logger, type LoggerService } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { cloneApiKey, type ApiKey } from '../api-key.interface.js';
import type { ApiKeyBackend, ApiKeyChanges, ListAllOptions, ListByOwnerOptions, PurgeOptions, UpdateOptions } from '../backends/backend.interface.js';
import { SingleFlight } from '../internal/single-flight.js';
import { RedisCacheCircuit, RedisCacheFailure } from './redis-cache.circuit.js';
import { decodeRedisCacheEntry, encodeRedisCacheEntry } from './redis-cache.codec.js';
import { isLeased } from './redis-cache.generation.js';
import { RedisCacheGenerationWriter } from './redis-cache.generation-writer.js';
import { redisCacheKeys, redisCacheKeysFromId, redisCacheProbeKey, type RedisCacheKeys } from './redis-cache.keys.js';
import {
  resolveRedisCacheOptions,
  type RedisCacheBackendOptions,
  type RedisCacheInvalidation,
  type RedisCacheManager,
  type ResolvedRedisCacheOptions,
} from './redis-cache.options.js';
import { leaseMsFor, RedisCacheWriteLeases } from './redis-cache.write-lease.js';

export type { RedisCacheBackendOptions, RedisCacheInvalidation, RedisCacheManager } from './redis-cache.options.js';

// Importers of the lease margin from here keep working.
export { LEASE_MARGIN_MS } from './redis-cache.write-lease.js';

const PROBE_TTL_MS = 10_000;
/** Invalidations in flight at once after a purge: bounded, so a batch of 1000 is no burst of 3000 commands. */
const PURGE_INVALIDATION_CONCURRENCY = 16;

/** Marks a read that must not fill the cache: the cache is down, or its generation unreadable. */
const BYPASS = Symbol('bypass');
type Generation = string | null | typeof BYPASS;

/**
 * A cache-manager cache (Redis) in front of any backend for `getByHash`, filled from
 * the primary with unknown keys remembered for `negativeTtl` and one primary read per
 * burst of misses; every other call goes to the primary. A write first holds the key
 * back in Redis with a lease (refused, by default, when it cannot) and voids the key's
 * cached entry before it resolves; an outage sends lookups to the primary, which alone
 * decides: docs/redis-cache.md, "Consistency", "Redis outages" and "Writes while Redis
 * is unreachable".
 *
 * ```ts
 * const backend = new RedisCacheBackend({ cache, primary: new MikroOrmBackend(orm), ttl: 5 * 60_000 });
 * ```
 */
export class RedisCacheBackend implements ApiKeyBackend {
  /** The store of record. */
  readonly primary: ApiKeyBackend;
  /** Present only when the primary has it, so callers keep their "optional method" path. */
  readonly countByOwner?: (ownerId: string) => Promise<number>;
  /** Present only when the primary has it; always from the primary. */
  readonly listByIssuer?: (issuerId: string) => AsyncIterable<ApiKey>;
  /** Present only when the primary has it; voids the purged keys' entries. */
  readonly purge?: (options: PurgeOptions) => Promise<number>;
  /** Present only when the primary has it; voids the entries of both hashes. */
  readonly replaceHash?: (id: string, fromHash: string, toHash: string) => Promise<boolean>;
  /** Present only when the primary has it; always from the primary. */
  readonly listAll?: (options: ListAllOptions) => AsyncIterable<ApiKey>;
  private readonly cache: RedisCacheManager;
  private readonly settings: ResolvedRedisCacheOptions;
  private readonly logger: LoggerService;
  private readonly onInvalidate: ((invalidation: RedisCacheInvalidation) => void) | undefined;
  private readonly circuit: RedisCacheCircuit;
  private readonly flights = new SingleFlight<ApiKey | null>();
  private readonly probeKey: string;
  private readonly generations: RedisCacheGenerationWriter;
  private readonly leases: RedisCacheWriteLeases;

  constructor(options: RedisCacheBackendOptions) {
    this.settings = resolveRedisCacheOptions(options);
    this.cache = options.cache;
    this.primary = options.primary;
    this.logger = options.logger ?? new Logger('ApiAuth');
    this.onInvalidate = options.onInvalidate;
    this.probeKey = redisCacheProbeKey(this.settings.namespace, randomBytes(9).toString('base64url'));
    const primary = options.primary;
    if (typeof primary.countByOwner === 'function') this.countByOwner = (ownerId) => primary.countByOwner!(ownerId);
    if (typeof primary.listByIssuer === 'function') this.listByIssuer = (issuerId) => primary.listByIssuer!(issuerId);
    if (typeof primary.purge === 'function') this.purge = (purgeOptions) => this.purgeThrough(purgeOptions);
    if (typeof primary.replaceHash === 'function') {
      this.replaceHash = (id, fromHash, toHash) => this.leases.write([fromHash, toHash], id, () => primary.replaceHash!(id, fromHash, toHash));
    }
    if (typeof primary.listAll === 'function') this.listAll = (listOptions) => primary.listAll!(listOptions);
    if ((this.cache.stores?.length ?? 1) > 1) {
      // A per-process store in the list would keep entries that other instances' writes cannot reach.
      this.logger.warn(
        'RedisCacheBackend was given a cache with several stores; give it one shared store (Redis) so that writes on one instance invalidate every other.',
      );
    }
    this.circuit = new RedisCacheCircuit({
      cache: this.cache,
      timeoutMs: this.settings.timeoutMs,
      retryIntervalMs: this.settings.retryIntervalMs,
      logger: this.logger,
      probe: () => this.probe(),
      replay: (id) => this.generations.settle(redisCacheKeysFromId(this.settings.namespace, id)),
      unreachableWrites: this.settings.unreachableWrites,
    });
    const leaseMs = leaseMsFor(this.settings.writeTimeoutMs);
    this.generations = new RedisCacheGenerationWriter({ cache: this.cache, circuit: this.circuit, settings: this.settings, leaseMs });
    this.leases = new RedisCacheWriteLeases({
      settings: this.settings,
      circuit: this.circuit,
      generations: this.generations,
      forget: (id) => this.flights.forget(id),
      notify: (invalidation) => this.notify(invalidation),
    });
  }

  /** Whether lookups currently use the cache (`false` during a Redis outage). For health checks. */
  get cacheAvailable(): boolean {
    return this.circuit.isUp;
  }

  async getByHash(keyHash: string): Promise<ApiKey | null> {
    const keys = redisCacheKeys(this.settings.namespace, keyHash);
    if (!this.circuit.isUp) return this.load(keyHash, keys, BYPASS);
    let values: unknown[];
    try {
      values = await this.circuit.run(() => this.cache.mget([keys.entry, keys.generation]));
    } catch {
      return this.load(keyHash, keys, BYPASS);
    }
    const [rawEntry, rawGeneration] = values;
    const generation: Generation =
      rawGeneration === undefined || rawGeneration === null ? null : typeof rawGeneration === 'string' ? rawGeneration : BYPASS;
    const now = Date.now();
    // A write holds the key: the primary answers, and nothing is filled until it is done.
    if (generation === BYPASS || (generation !== null && isLeased(generation, now))) return this.load(keyHash, keys, BYPASS);
    const entry = decodeRedisCacheEntry(rawEntry, keyHash);
    if (
      entry !== undefined &&
      entry.generation === generation &&
      entry.filledAt >= this.circuit.notBefore &&
      now < entry.validUntil
    ) {
      // Decoded just now, so the caller owns this object.
      return entry.record;
    }
    return this.load(keyHash, keys, generation);
  }

  async getById(id: string): Promise<ApiKey | null> {
    // Not the hot path, and management screens want it fresh.
    const record = await this.primary.getById(id);
    if (record !== null && (record.revokedAt !== null || record.disabledAt != null)) await this.voidStaleEntry(record);
    return record;
  }

  create(apiKey: ApiKey): Promise<ApiKey> {
    // Voids a negative entry left by someone trying this hash before it existed. A new
    // key cannot be served stale, but a create is refused like any write when Redis is
    // out of reach, so that a rotation refused there leaves no replacement behind.
    return this.leases.write([apiKey.keyHash], apiKey.id, () => this.primary.create(apiKey));
  }

  async update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    // The cache is addressed by hash, which only the record knows. An unknown id goes
    // to the primary alone, which answers "not found".
    const current = await this.primary.getById(id);
    if (current === null) return this.primary.update(id, changes, options);
    const updated = await this.leases.write([current.keyHash], id, () => this.primary.update(id, changes, options));
    // Only `replaceHash` moves a hash; one that ran in between gets its entry voided too.
    if (updated.keyHash !== current.keyHash) await this.invalidate(updated.keyHash, id);
    return updated;
  }

  async delete(id: string): Promise<void> {
    const current = await this.primary.getById(id);
    if (current === null) return this.primary.delete(id);
    await this.leases.write([current.keyHash], id, () => this.primary.delete(id));
  }

  listByOwner(ownerId: string, options?: ListByOwnerOptions): AsyncIterable<ApiKey> {
    return this.primary.listByOwner(ownerId, options);
  }

  recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    // No invalidation: that would empty the cache once per usage interval. Cached
    // `lastUsedAt` lags by up to `ttl` instead.
    return this.primary.recordUsage(id, usedAt, staleBefore);
  }

  /**
   * The primary's purge, then voids each deleted key's entry (a few at a time). The
   * entries of keys it deleted without reporting them show the keys expired or revoked,
   * and so refuse them, until their `ttl` runs out.
   */
  private async purgeThrough(options: PurgeOptions): Promise<number> {
    const deleted: Array<{ id: string; keyHash: string }> = [];
    const count = await this.primary.purge!({
      ...options,
      onDeleted: (records) => {
        deleted.push(...records);
        options.onDeleted?.(records);
      },
    });
    for (let i = 0; i < deleted.length; i += PURGE_INVALIDATION_CONCURRENCY) {
      await Promise.all(deleted.slice(i, i + PURGE_INVALIDATION_CONCURRENCY).map(({ id, keyHash }) => this.invalidate(keyHash, id)));
    }
    return count;
  }

  /**
   * Voids the cached answer for a key hash on every instance sharing this Redis. Writes
   * through this backend do it themselves; call it after changing the primary behind
   * the library's back. Resolves even when Redis is down: the invalidation is then
   * replayed when it is back.
   */
  async invalidate(keyHash: string, id?: string): Promise<void> {
    const keys = redisCacheKeys(this.settings.namespace, keyHash);
    // Later lookups must not join a primary read that started before this write.
    this.flights.forget(keys.id);
    this.notify({ ids: id === undefined ? [] : [id], hashes: [keyHash] });
    // When Redis fails, this instance stops reading the cache until the invalidation has been replayed.
    await this.generations.settleOrDefer(keys);
  }

  /**
   * Resolves when the cache works: writes a probe value and reads it back. Rejects
   * while lookups bypass the cache (the circuit is open) or when the probe fails,
   * which also opens the circuit. For health checks (`ApiKeyHealthIndicator`); it
   * never touches the primary.
   */
  async checkHealth(): Promise<void> {
    if (!this.circuit.isUp) throw new RedisCacheFailure('The Redis cache is unavailable; lookups go to the primary store.');
    await this.probe();
  }

  /** Stops listening to the cache's events and probing it. Closes neither the cache nor the primary. */
  async dispose(): Promise<void> {
    this.circuit.detach();
    await this.circuit.settled();
  }

  /** Nest calls this on the resolved `API_KEY_BACKEND` at shutdown: see {@link dispose}. */
  async onModuleDestroy(): Promise<void> {
    await this.dispose();
  }

  /** Reads the primary (once for all concurrent callers with the same view) and fills the cache. */
  private async load(keyHash: string, keys: RedisCacheKeys, generation: Generation): Promise<ApiKey | null> {
    const token = generation === BYPASS ? 'bypass' : generation === null ? 'none' : `g:${generation}`;
    const record = await this.flights.run(keys.id, token, async () => {
      const readAt = Date.now();
      const found = await this.primary.getByHash(keyHash);
      if (generation !== BYPASS && this.circuit.isUp) await this.fill(keys, generation, found, readAt);
      return found;
    });
    // Callers share the flight's record; each gets its own copy.
    return record === null ? null : cloneApiKey(record);
  }

  private async fill(keys: RedisCacheKeys, generation: string | null, record: ApiKey | null, readAt: number): Promise<void> {
    const validUntil = readAt + this.lifetimeOf(record, readAt);
    // Counted from now, not from the read, so Redis drops the entry at `validUntil` too.
    const remaining = validUntil - Date.now();
    if (remaining <= 0) return;
    const value = encodeRedisCacheEntry({ generation, filledAt: readAt, validUntil, record });
    try {
      await this.circuit.run(() => this.cache.set(keys.entry, value, remaining));
    } catch {
      // The circuit has opened; the answer from the primary stands.
    }
  }

  /** How long an answer may be cached: never past the key's expiry. */
  private lifetimeOf(record: ApiKey | null, now: number): number {
    const { ttl, negativeTtl } = this.settings;
    if (record === null) return negativeTtl;
    // Revocation is permanent, so a revoked record cannot go stale by staying revoked.
    if (record.revokedAt !== null || record.expiresAt === null) return ttl;
    const left = record.expiresAt.getTime() - now;
    // An expired key is as good as unknown: cache the refusal briefly.
    return left <= 0 ? negativeTtl : Math.min(ttl, left);
  }

  /**
   * Invalidates the entry of a key the primary shows revoked (or disabled) when the
   * entry still shows it valid (or enabled). The instance that revoked it invalidates only after its primary
   * write, so in between, a revoke on this instance finds the key already revoked,
   * writes nothing, and would resolve while this instance's next lookup could still
   * be answered from the old entry. One cache read when the entry is right.
   */
  private async voidStaleEntry(record: ApiKey): Promise<void> {
    if (!this.circuit.isUp) return;
    const keys = redisCacheKeys(this.settings.namespace, record.keyHash);
    let raw: unknown;
    try {
      [raw] = await this.circuit.run(() => this.cache.mget([keys.entry]));
    } catch {
      // The circuit has opened: lookups go to the primary until entries from before are ignored.
      return;
    }
    const entry = decodeRedisCacheEntry(raw, record.keyHash);
    const stale =
      entry?.record != null &&
      entry.record.revokedAt === null &&
      (record.revokedAt !== null || (record.disabledAt != null && entry.record.disabledAt === null));
    if (stale) await this.invalidate(record.keyHash, record.id);
  }

  /** Writes and reads back a value; resolves only when the cache works both ways. */
  private async probe(): Promise<void> {
    const token = randomBytes(9).toString('base64url');
    await this.circuit.run(() => this.cache.set(this.probeKey, token, PROBE_TTL_MS), 'write');
    const [stored] = await this.circuit.run(() => this.cache.mget([this.probeKey]), 'write');
    if (stored !== token) throw new RedisCacheFailure('The Redis cache did not return what was written.');
  }

  private notify(invalidation: RedisCacheInvalidation): void {
    if (!this.onInvalidate) return;
    try {
      this.onInvalidate(invalidation);
    } catch (error) {
      // The name only: the hook's message could quote the hash it was given.
      this.logger.error(`The onInvalidate hook threw ${(error as Error)?.name ?? 'an error'}; ignored.`);
    }
  }
}
