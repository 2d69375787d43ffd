import { cloneApiKey, type ApiKey, type ApiKeyView } from '../api-key.interface.js';
import { invalidationTag } from './invalidation-tag.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import { positiveIntegerOption } from '../options/option-values.js';
import { LruMap } from './lru-map.js';
import { shareApiKey } from '../internal/shared-api-key.js';

/**
 * A key held in the L1: the record and the view handed to requests, both frozen and
 * shared by every request that hits the entry, so a hit copies nothing.
 */
export interface CachedApiKey {
  /** The stored record as the primary returned it. Frozen: never mutate it. */
  readonly record: Readonly<ApiKey>;
  /** What `@CurrentApiKey()` receives. Frozen, without the hash. */
  readonly view: Readonly<ApiKeyView>;
}

/** Options of {@link L1Cache}; every value is validated by the constructor. */
export interface L1CacheOptions {
  /**
   * Most known keys held. Past it the least recently used is dropped. A held key costs
   * about 1.5 kB with small metadata (measured), so the default bound is ~15 MB. Default `10000`.
   */
  maxEntries?: number;
  /**
   * Most unknown hashes remembered. Kept apart from `maxEntries` so that a flood of
   * garbage keys evicts other garbage, never the keys real clients use. About 350
   * bytes each, plus about 35 for the tag index (measured), so the default bound is
   * ~20 MB. Default `50000`.
   */
  maxNegativeEntries?: number;
  /**
   * How long a known key is served from memory, in milliseconds. With a bus this only
   * bounds staleness while the bus is down; without one it is how long another
   * instance's revocation can go unseen. An entry never outlives the key's `expiresAt`.
   * Default `10000`.
   */
  ttl?: number;
  /**
   * How long an unknown hash is remembered, in milliseconds: the primary sees each
   * distinct garbage key at most once per this interval. Default `5000`.
   */
  negativeTtl?: number;
  /** The clock, in epoch milliseconds. Inject one in tests. Default `Date.now`. */
  now?: () => number;
}

const OPTION_NAMES = optionNames<L1CacheOptions>({
  maxEntries: true,
  maxNegativeEntries: true,
  ttl: true,
  negativeTtl: true,
  now: true,
});

const DEFAULTS = { maxEntries: 10_000, maxNegativeEntries: 50_000, ttl: 10_000, negativeTtl: 5_000 };

/**
 * The in-process cache in front of a backend, keyed by key hash: bounded LRU by entry
 * count, with separate bounds for known keys and unknown hashes, a per-entry deadline
 * checked on read (no timer per entry), and two indexes so that an invalidation, which
 * never carries a hash, finds its entries: by key id for known keys, by invalidation
 * tag for any entry (see {@link invalidationTag}). Every operation is O(1) except
 * {@link deleteTag}, which is O(entries under the tag).
 *
 * The indexes cost nothing on a hit: `get` reads the two LRU maps only. They are kept
 * on fills and removals, which follow a primary read anyway.
 */
export class L1Cache {
  private readonly known: LruMap<CachedApiKey>;
  /** Unknown hashes carry only their tag: garbage keys should cost as little as possible. */
  private readonly unknown: LruMap<number>;
  /** Key id to the hash it is held under: updates, revocations and deletions name ids. */
  private readonly hashById = new Map<string, string>();
  /**
   * Tag to every hash held under it, known or unknown: creations name tags, so that an
   * instance that remembered a new key as unknown forgets that at once. Each held hash
   * is in exactly one set, so the index is bounded by the LRU maps.
   */
  private readonly hashesByTag = new Map<number, Set<string>>();
  private readonly ttl: number;
  private readonly negativeTtl: number;
  private readonly now: () => number;

  constructor(options: L1CacheOptions = {}) {
    assertKnownOptions(options, OPTION_NAMES, { of: 'L1 cache' });
    this.known = new LruMap(positiveIntegerOption('L1 cache', 'maxEntries', options.maxEntries, DEFAULTS.maxEntries), (entry, hash) => {
      this.forgetId(entry);
      this.untag(invalidationTag(hash), hash);
    });
    this.unknown = new LruMap(
      positiveIntegerOption('L1 cache', 'maxNegativeEntries', options.maxNegativeEntries, DEFAULTS.maxNegativeEntries),
      (tag, hash) => this.untag(tag, hash),
    );
    this.ttl = positiveIntegerOption('L1 cache', 'ttl', options.ttl, DEFAULTS.ttl);
    this.negativeTtl = positiveIntegerOption('L1 cache', 'negativeTtl', options.negativeTtl, DEFAULTS.negativeTtl);
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new Error('nestjs-api-auth: L1 cache option "now" must be a function returning epoch milliseconds.');
    }
    this.now = options.now ?? Date.now;
  }

  /** Entries held, known and unknown, including expired ones not yet dropped. */
  get size(): number {
    return this.known.size + this.unknown.size;
  }

  /** Known keys held. */
  get knownSize(): number {
    return this.known.size;
  }

  /** Unknown hashes held. */
  get unknownSize(): number {
    return this.unknown.size;
  }

  /** How long a known key is served from memory, in milliseconds. */
  get ttlMs(): number {
    return this.ttl;
  }

  /**
   * The cached answer for a hash: the key, `null` when the hash is known not to exist,
   * or `undefined` when the cache cannot say (ask the primary).
   */
  get(keyHash: string): CachedApiKey | null | undefined {
    const now = this.now();
    const entry = this.known.get(keyHash, now);
    if (entry !== undefined) return entry;
    return this.unknown.get(keyHash, now) === undefined ? undefined : null;
  }

  /** The cache's clock (epoch milliseconds): what `readAt` of {@link set} is measured on. */
  time(): number {
    return this.now();
  }

  /**
   * Holds `record` under its own hash and returns the entry. The record is copied and
   * frozen; later changes to the argument do not reach the cache. The `ttl` counts from
   * `readAt`, when the read that returned `record` started (default now): a read that
   * began before a write and ended after it then cannot outlive that write by more than
   * `ttl`, even when its invalidation never arrives.
   */
  set(record: ApiKey, readAt?: number): CachedApiKey {
    const now = this.now();
    let deadline = Math.min(now, readAt ?? now) + this.ttl;
    // A live key must stop being served at its expiry even if the TTL runs longer. A key
    // already past it is cached as expired: only an update (which invalidates) revives it.
    const expiresAt = record.expiresAt === null ? null : record.expiresAt.getTime();
    if (expiresAt !== null && expiresAt > now && expiresAt < deadline) deadline = expiresAt;

    const value = snapshotApiKey(record);
    const frozen = value.record;
    const hash = frozen.keyHash;

    // A hash remembered as unknown keeps its place in the tag index, under the same tag.
    const tag = this.unknown.delete(hash) ?? invalidationTag(hash);
    const previousHash = this.hashById.get(frozen.id);
    if (previousHash !== undefined && previousHash !== hash) this.deleteHash(previousHash);
    this.hashById.set(frozen.id, hash);
    this.tag(tag, hash);
    this.known.set(hash, value, deadline);
    return value;
  }

  /** Remembers that no key has this hash, for `negativeTtl`. */
  setMissing(keyHash: string): void {
    const known = this.known.delete(keyHash);
    if (known !== undefined) this.forgetId(known);
    const tag = invalidationTag(keyHash);
    this.tag(tag, keyHash);
    this.unknown.set(keyHash, tag, this.now() + this.negativeTtl);
  }

  /** Drops whatever is cached for this hash. Returns whether anything was. */
  deleteHash(keyHash: string): boolean {
    const known = this.known.delete(keyHash);
    if (known !== undefined) {
      this.forgetId(known);
      this.untag(invalidationTag(keyHash), keyHash);
      return true;
    }
    const tag = this.unknown.delete(keyHash);
    if (tag === undefined) return false;
    this.untag(tag, keyHash);
    return true;
  }

  /** Drops the cached key with this id, if any. Unknown hashes have no id: see {@link deleteTag}. */
  deleteId(id: string): boolean {
    const hash = this.hashById.get(id);
    if (hash === undefined) return false;
    this.hashById.delete(id);
    if (this.known.delete(hash) === undefined) return false;
    this.untag(invalidationTag(hash), hash);
    return true;
  }

  /**
   * Drops every entry, known or unknown, whose hash has this invalidation tag (about 1
   * in 4,096 of them). Returns how many were dropped.
   */
  deleteTag(tag: number): number {
    const hashes = this.hashesByTag.get(tag);
    if (hashes === undefined) return 0;
    this.hashesByTag.delete(tag);
    let dropped = 0;
    for (const hash of hashes) {
      const known = this.known.delete(hash);
      if (known !== undefined) this.forgetId(known);
      if (known !== undefined || this.unknown.delete(hash) !== undefined) dropped++;
    }
    return dropped;
  }

  /** Drops everything. */
  clear(): void {
    this.known.clear();
    this.unknown.clear();
    this.hashById.clear();
    this.hashesByTag.clear();
  }

  private forgetId(entry: CachedApiKey): void {
    const id = entry.record.id;
    if (this.hashById.get(id) === entry.record.keyHash) this.hashById.delete(id);
  }

  private tag(tag: number, hash: string): void {
    const hashes = this.hashesByTag.get(tag);
    if (hashes === undefined) this.hashesByTag.set(tag, new Set([hash]));
    else hashes.add(hash);
  }

  private untag(tag: number, hash: string): void {
    const hashes = this.hashesByTag.get(tag);
    if (hashes === undefined) return;
    hashes.delete(hash);
    if (hashes.size === 0) this.hashesByTag.delete(tag);
  }
}

/**
 * A frozen copy of a record and of its view, shareable between requests: what a
 * synchronous `peekByHash` hands the service.
 */
export function snapshotApiKey(record: ApiKey): CachedApiKey {
  return shareApiKey(cloneApiKey(record));
}
