import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyNotFoundError, BackendUnavailableError, DuplicateApiKeyError, VersionConflictError } from '../api-key.errors.js';
import { changedFields } from '../backends/apply-changes.js';
import type { ApiKeyBackend, ApiKeyChanges, ListAllOptions, ListByOwnerOptions, PurgeOptions, UpdateOptions } from '../backends/backend.interface.js';
import { matchesListAllFilters } from '../backends/key-status.js';
import { INDEX_RECORDS, PURGE, REPLACE_HASH } from './redis-lifecycle.scripts.js';
import {
  REDIS_SCHEMA_VERSION,
  resolveRedisBackendOptions,
  type RedisBackendOptions,
  type ResolvedRedisBackendOptions,
} from './redis-backend.options.js';
import type { RedisCommandClient } from './redis-client.types.js';
import { commandClient, hasHashTag, isRedisCluster, sendCommandForKey, type RedisClient } from './redis-cluster.client.js';
import { RedisBackendCommands } from './redis-backend.commands.js';
import { RedisBackendKeys } from './redis-backend.keys.js';
import { decodeStoredRecord, encodeChanges, encodeStoredRecord, ownerEntry } from './redis-record.codec.js';
import { LOOK_UP_BY_HASH } from '../verification/lookup-callbacks.js';
import {
  BACKFILL_ALL_INDEX,
  CREATE,
  DELETE,
  GET_BY_ID,
  LIST_ALL_PAGE,
  LIST_ISSUED_PAGE,
  LIST_PAGE,
  RECORD_USAGE,
  UPDATE,
} from './redis.scripts.js';

export type { RedisBackendOptions } from './redis-backend.options.js';
export type { RedisCommandClient } from './redis-client.types.js';

/**
 * Redis as the only key store: the record under its key hash (verification is one GET,
 * no script), indexes by id, owner and issuer, and every write one Lua script, atomic
 * across clients. It never closes the client it was given, and runs on a standalone
 * Redis, a Sentinel-managed primary, or a Cluster with a hash-tagged namespace. The
 * layout and its guarantees: docs/redis.md, "How keys are stored" and "Guarantees".
 */
export class RedisBackend implements ApiKeyBackend {
  private readonly options: ResolvedRedisBackendOptions;
  private readonly base: string;
  private readonly commands: RedisBackendCommands;
  private readonly keys: RedisBackendKeys;
  private readonly client: RedisCommandClient;
  /** Settles once the index across owners is known to hold every record (see `backfillListAllIndex`). */
  private listAllIndexReady: Promise<void> | null = null;

  /**
   * @param client a connected node-redis v5 client (`createClient()` from `redis`) or
   *   cluster client (`createCluster()`), or anything with `sendCommand(args)`. Create it
   *   with `disableOfflineQueue: true` so that, while Redis is unreachable, calls fail at
   *   once (503) rather than queue.
   */
  constructor(client: RedisClient, options?: RedisBackendOptions) {
    this.client = commandClient(client, 'RedisBackend');
    this.options = resolveRedisBackendOptions(options);
    if (isRedisCluster(client) && !hasHashTag(this.options.namespace)) {
      // The scripts of this layout reach several keys of one record: on a cluster they
      // must all live in one slot, or Redis refuses them (CROSSSLOT) or, worse, runs
      // them only when the slots happen to share a node.
      throw new Error(
        'RedisBackend: on Redis Cluster the option "namespace" must contain a hash tag, e.g. "{api-auth}:", so that every key of this layout is in one slot.',
      );
    }
    this.base = `${this.options.namespace}${REDIS_SCHEMA_VERSION}:`;
    this.keys = new RedisBackendKeys(this.base);
    this.commands = new RedisBackendCommands(this.client, this.options.commandTimeoutMs, this.options.waitForReplicas);
  }

  /** The prefix of every Redis key this backend writes, schema version included. */
  get keyPrefix(): string {
    return this.base;
  }

  getByHash(keyHash: string): Promise<ApiKey | null> {
    // With the hash: a value a foreign writer left there never answers for this key.
    return this.commands.command('getByHash', ['GET', this.keys.record(keyHash)], (reply) => this.decode('getByHash', reply, keyHash));
  }

  /** `getByHash` through callbacks, for the verification path (see `LOOK_UP_BY_HASH`). */
  [LOOK_UP_BY_HASH](keyHash: string, onRecord: (record: ApiKey | null) => void, onError: (error: unknown) => void): void {
    this.commands.commandThen('getByHash', ['GET', this.keys.record(keyHash)], (reply) => this.decode('getByHash', reply, keyHash), onRecord, onError);
  }

  getById(id: string): Promise<ApiKey | null> {
    return this.commands.script('getById', GET_BY_ID, [this.keys.id(id)], [this.base], (reply) => {
      const record = this.decode('getById', reply);
      return record && record.id === id ? record : null;
    });
  }

  async create(apiKey: ApiKey): Promise<ApiKey> {
    const stored = encodeStoredRecord(apiKey, this.options.recordEncoding);
    const keys = [this.keys.id(apiKey.id), this.keys.record(apiKey.keyHash), this.keys.owner(apiKey.ownerId), this.keys.all()];
    if (apiKey.issuedById != null) keys.push(this.keys.issuer(apiKey.issuedById));
    const outcome = await this.commands.script('create', CREATE, keys, [
      apiKey.keyHash,
      ownerEntry(apiKey.createdAt, apiKey.id),
      this.expireAt(apiKey.expiresAt),
      stored,
      apiKey.id,
      this.base,
    ]);
    if (outcome === 'id' || outcome === 'keyHash') throw new DuplicateApiKeyError(outcome);
    return this.decode('create', stored) as ApiKey;
  }

  async update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    const fields = changedFields(changes);
    // The expiry Redis keeps follows `expiresAt`: moved only when the update moves it.
    const expiry = fields.includes('expiresAt') && this.options.expireRecords ? this.expireAt(changes.expiresAt ?? null) : '-';
    const expected = options?.expectedVersion;
    const reply = await this.commands.script('update', UPDATE, [this.keys.id(id)], [
      this.base,
      expected === undefined ? '' : String(expected),
      expiry,
      String(this.options.recordEncoding),
      ...encodeChanges(changes, [...fields, 'updatedAt']),
    ]);
    if (Array.isArray(reply) && reply[0] === 'conflict') throw new VersionConflictError(id, expected!, Number(reply[1]));
    const stored = this.decode('update', reply);
    if (!stored) throw new ApiKeyNotFoundError(id);
    return stored;
  }

  /** Streams the keys `issuerId` issued, a page of `pageSize` ids per round trip. */
  async *listByIssuer(issuerId: string): AsyncIterable<ApiKey> {
    let cursor = '0';
    do {
      const [next, records] = (await this.commands.script(
        'listByIssuer',
        LIST_ISSUED_PAGE,
        [this.keys.issuer(issuerId)],
        [this.base, cursor, String(this.options.pageSize), issuerId],
      )) as [unknown, unknown[]];
      for (const stored of records) {
        const record = this.decode('listByIssuer', stored);
        if (record) yield record;
      }
      cursor = String(next);
    } while (cursor !== '0');
  }

  async delete(id: string): Promise<void> {
    await this.commands.script('delete', DELETE, [this.keys.id(id)], [this.base, id]);
  }

  async *listByOwner(ownerId: string, options: ListByOwnerOptions = {}): AsyncIterable<ApiKey> {
    const { limit, after } = options;
    let bound = after ? `(${ownerEntry(after.createdAt, after.id)}` : '-';
    let yielded = 0;
    while (limit === undefined || yielded < limit) {
      const want = limit === undefined ? this.options.pageSize : Math.min(this.options.pageSize, limit - yielded);
      const reply = (await this.commands.script(
        'listByOwner',
        LIST_PAGE,
        [this.keys.owner(ownerId)],
        [this.base, bound, String(want), ownerId],
      )) as [unknown[], unknown[]];
      const [entries, records] = reply;
      for (const stored of records) {
        const record = this.decode('listByOwner', stored);
        if (record) {
          yielded++;
          yield record;
        }
      }
      if (entries.length < want) return;
      bound = `(${String(entries[entries.length - 1])}`;
    }
  }

  /**
   * Deletes up to `limit` expired, then revoked records, found through the purge index
   * (two sorted sets by expiry and revocation time that every write keeps in step), in
   * one script: atomic, and bounded by `limit`.
   */
  async purge(options: PurgeOptions): Promise<number> {
    const bound = (date: Date | undefined) => (date === undefined ? '' : String(date.getTime()));
    const reply = (await this.commands.script(
      'purge',
      PURGE,
      [`${this.base}expiring`, `${this.base}revoked`],
      [this.base, bound(options.expiredBefore), bound(options.revokedBefore), String(options.limit)],
    )) as unknown[];
    const deleted: Array<{ id: string; keyHash: string }> = [];
    for (let i = 0; i + 1 < reply.length; i += 2) deleted.push({ id: String(reply[i]), keyHash: String(reply[i + 1]) });
    if (deleted.length > 0) options.onDeleted?.(deleted);
    return deleted.length;
  }

  /**
   * Files every stored record in the purge index. Writes keep the index in step, so this
   * is needed once, after upgrading from a release without it: a record stored then and
   * not written since is otherwise invisible to `purge`. Walks the id index with SCAN,
   * `pageSize` keys per step (one script each), so it never blocks Redis for long;
   * idempotent, and safe while the app runs. Resolves to the number of records read.
   */
  async rebuildPurgeIndex(): Promise<number> {
    const anchor = `${this.base}expiring`;
    const pattern = `${escapeGlob(this.base)}id:*`;
    let cursor = '0';
    let indexed = 0;
    do {
      // Routed by a key of this layout: on a cluster, its one slot's node holds every key.
      const [next, keys] = (await this.commands.guard('rebuildPurgeIndex', () =>
        sendCommandForKey(this.client, anchor, ['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(this.options.pageSize)]),
      )) as [unknown, unknown[]];
      if (keys.length > 0) {
        indexed += Number(await this.commands.script('rebuildPurgeIndex', INDEX_RECORDS, keys.map(String), [this.base]));
      }
      cursor = String(next);
    } while (cursor !== '0');
    return indexed;
  }

  async replaceHash(id: string, fromHash: string, toHash: string): Promise<boolean> {
    const outcome = await this.commands.script('replaceHash', REPLACE_HASH, [this.keys.id(id), this.keys.record(fromHash), this.keys.record(toHash)], [
      fromHash,
      toHash,
      id,
    ]);
    if (outcome === 'keyHash') throw new DuplicateApiKeyError('keyHash');
    return Number(outcome) === 1;
  }

  /**
   * Every owner's keys, newest first: the index across owners (`<base>all`) walked
   * backwards a page per round trip, or the owner's set when `ownerId` is given.
   * `environment` and `status` are applied to each page as it is read, so a rare
   * match costs a walk over the keys newer than it. The first call on a store written
   * before the index existed fills it first (see {@link backfillListAllIndex}).
   */
  async *listAll(options: ListAllOptions): AsyncIterable<ApiKey> {
    const { limit, after, ownerId } = options;
    if (ownerId === undefined) await this.ensureListAllIndex();
    const set = ownerId === undefined ? this.keys.all() : this.keys.owner(ownerId);
    let bound = after ? `(${ownerEntry(after.createdAt, after.id)}` : '+';
    let yielded = 0;
    while (limit === undefined || yielded < limit) {
      const want = this.options.pageSize;
      const [entries, records] = (await this.commands.script('listAll', LIST_ALL_PAGE, [set], [this.base, bound, String(want), ownerId ?? ''])) as [
        unknown[],
        unknown[],
      ];
      for (const stored of records) {
        const record = this.decode('listAll', stored);
        if (record && matchesListAllFilters(record, options)) {
          yielded++;
          yield record;
          if (limit !== undefined && yielded >= limit) return;
        }
      }
      if (entries.length < want) return;
      bound = `(${String(entries[entries.length - 1])}`;
    }
  }

  /**
   * Adds every stored record to the index across owners that `listAll` walks, from the
   * owners' sets. Records created by this release are indexed as they are created; the
   * first `listAll` of a process runs this once when the store has not been backfilled
   * yet. Call it yourself after a rolling upgrade, once no instance of an earlier
   * release writes any more: keys those instances created in between are not indexed
   * until then. Idempotent; resolves when the whole keyspace has been scanned.
   */
  async backfillListAllIndex(): Promise<void> {
    const pattern = `${escapeGlob(this.base)}owner:*`;
    let cursor = '0';
    do {
      cursor = String(await this.commands.script('backfillListAllIndex', BACKFILL_ALL_INDEX, [this.keys.all()], [cursor, '200', pattern]));
    } while (cursor !== '0');
    await this.commands.command('backfillListAllIndex', ['SET', this.keys.allIndexed(), '1']);
  }

  /** Backfills the index across owners once per process when the store says it never was. */
  private ensureListAllIndex(): Promise<void> {
    this.listAllIndexReady ??= (async () => {
      const done = await this.commands.command('listAll', ['GET', this.keys.allIndexed()]);
      if (done === null || done === undefined) await this.backfillListAllIndex();
    })().catch((error: unknown) => {
      this.listAllIndexReady = null;
      throw error;
    });
    return this.listAllIndexReady;
  }

  async countByOwner(ownerId: string): Promise<number> {
    return Number(await this.commands.command('countByOwner', ['ZCARD', this.keys.owner(ownerId)]));
  }

  async recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    const wrote = await this.commands.script(
      'recordUsage',
      RECORD_USAGE,
      [this.keys.id(id)],
      [this.base, String(usedAt.getTime()), String(staleBefore.getTime()), String(this.options.recordEncoding)],
    );
    return Number(wrote) === 1;
  }

  /** When Redis should drop the record: '' for never. */
  private expireAt(expiresAt: Date | null): string {
    if (!this.options.expireRecords || !expiresAt) return '';
    return String(expiresAt.getTime() + this.options.expiredRetentionMs);
  }

  /** A stored record, or `BackendUnavailableError` for a value this version cannot read. */
  private decode(operation: string, reply: unknown, keyHash?: string): ApiKey | null {
    try {
      return decodeStoredRecord(reply, keyHash);
    } catch (error) {
      throw new BackendUnavailableError(`Redis answered ${operation} with ${(error as Error).message}`, { cause: error });
    }
  }

}

/** `value` with the glob characters of SCAN's MATCH escaped, so it matches itself only. */
function escapeGlob(value: string): string {
  return value.replace(/[*?[\]\\]/g, '\\$&');
}

