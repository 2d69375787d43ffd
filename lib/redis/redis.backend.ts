import type { ApiKey } from '../api-key.interface.js';
import type { ApiKeyBackend, ApiKeyChanges, ListAllOptions, ListByOwnerOptions, PurgeOptions, UpdateOptions } from '../backends/backend.interface.js';
import { REDIS_SCHEMA_VERSION, resolveRedisBackendOptions, type RedisBackendOptions, type ResolvedRedisBackendOptions } from './redis-backend.options.js';
import type { RedisCommandClient } from './redis-client.types.js';
import { commandClient, hasHashTag, isRedisCluster, type RedisClient } from './redis-cluster.client.js';
import { RedisBackendCommands } from './redis-backend.commands.js';
import { LOOK_UP_BY_HASH, type LookupAnswer } from '../verification/lookup-callbacks.js';
import { RecordMemo } from './redis-record.memo.js';
import { decodeRecord, type RedisLayout } from './layout/redis-layout.js';
import { RedisLayoutV2 } from './layout/redis-layout.v2.js';
import { RedisLayoutV3 } from './layout/redis-layout.v3.js';
import { REDIS_LAYOUT_TEST_HOOKS, type RedisLayoutTestHooks } from './layout/redis-layout.v3.hooks.js';
import { migrateFromLayout2, type LayoutMigrationOptions, type LayoutMigrationReport } from './layout/redis-layout.v3.migrate.js';

export type { RedisBackendOptions } from './redis-backend.options.js';

const decodeLookup = (reply: unknown, keyHash: string): ApiKey | null => decodeRecord('getByHash', reply, keyHash);
const ignore = (): void => undefined;
export type { RedisCommandClient } from './redis-client.types.js';
export type { LayoutMigrationOptions, LayoutMigrationReport } from './layout/redis-layout.v3.migrate.js';

/**
 * Redis as the only key store: the record under its key hash (verification is one GET,
 * no script), indexes by id, owner and issuer. Layout 2 makes every write one Lua
 * script, atomic across clients; layout 3 spreads the keys over the slots of a
 * Redis Cluster (option `layout`). It never closes the client it was given, and runs
 * on a standalone Redis, a Sentinel-managed primary, or a Cluster. The layouts and
 * their guarantees: docs/redis.md, "How keys are stored" and "Guarantees".
 */
export class RedisBackend implements ApiKeyBackend {
  private readonly options: ResolvedRedisBackendOptions;
  private readonly client: RedisCommandClient;
  private readonly commands: RedisBackendCommands;
  private readonly layout: RedisLayout;
  /** Records the verification path decoded, by hash and bytes (option `decodeCacheSize`); `null` when 0. */
  private readonly memo: RecordMemo | null;
  /** The key layout this backend reads and writes (see option `layout`). */
  readonly layoutVersion: 2 | 3;

  /**
   * @param client a connected node-redis v5 client (`createClient()` from `redis`) or
   *   cluster client (`createCluster()`), or anything with `sendCommand(args)`. Create it
   *   with `disableOfflineQueue: true` so that, while Redis is unreachable, calls fail at
   *   once (503) rather than queue.
   */
  constructor(client: RedisClient, options?: RedisBackendOptions) {
    this.client = commandClient(client, 'RedisBackend');
    this.options = resolveRedisBackendOptions(options);
    const cluster = isRedisCluster(client);
    const tagged = hasHashTag(this.options.namespace);
    this.layoutVersion = this.options.layout ?? (cluster && !tagged ? 3 : 2);
    if (this.layoutVersion === 2 && cluster && !tagged) {
      // Layout 2's scripts reach several keys of one record: on a cluster they must all
      // live in one slot, or Redis refuses them (CROSSSLOT) or, worse, runs them only
      // when the slots happen to share a node.
      throw new Error(
        'RedisBackend: layout 2 on Redis Cluster needs a hash tag in the option "namespace", e.g. "{api-auth}:", so that every key is in one slot (one shard holds them all). To spread keys over slots, use layout 3 (option "layout": 3, the default on a cluster when the namespace has no hash tag).',
      );
    }
    this.commands = new RedisBackendCommands(this.client, this.options.commandTimeoutMs, this.options.waitForReplicas);
    const base = `${this.options.namespace}${this.layoutVersion === 2 ? REDIS_SCHEMA_VERSION : 'v3'}:`;
    const ctx = { client: this.client, commands: this.commands, options: this.options, base };
    const hooks = (options as { [REDIS_LAYOUT_TEST_HOOKS]?: RedisLayoutTestHooks } | undefined)?.[REDIS_LAYOUT_TEST_HOOKS];
    this.layout = this.layoutVersion === 2 ? new RedisLayoutV2(ctx) : new RedisLayoutV3(ctx, hooks);
    this.memo = this.options.decodeCacheSize > 0 ? new RecordMemo(this.options.decodeCacheSize) : null;
  }

  /** The prefix of every Redis key this backend writes, layout version included. */
  get keyPrefix(): string {
    return this.layout.keyPrefix;
  }

  getByHash(keyHash: string): Promise<ApiKey | null> {
    // With the hash: a value a foreign writer left there never answers for this key.
    return this.commands.command('getByHash', ['GET', this.layout.recordKey(keyHash)], (reply) => decodeRecord('getByHash', reply, keyHash));
  }

  /**
   * `getByHash` through callbacks, for the verification path (see `LOOK_UP_BY_HASH`).
   * Still one `GET` per lookup; bytes this backend decoded recently answer with the
   * shared, frozen record they decoded to (option `decodeCacheSize`).
   */
  [LOOK_UP_BY_HASH](keyHash: string, onRecord: LookupAnswer, onError: (error: unknown) => void): void {
    const memo = this.memo;
    const args = ['GET', this.layout.recordKey(keyHash)];
    if (memo === null) {
      this.commands.commandThen('getByHash', args, (reply) => decodeRecord('getByHash', reply, keyHash), onRecord, onError);
      return;
    }
    // The memo answers inside the decode step, so a failure still goes to `onError`.
    this.commands.commandThen('getByHash', args, (reply) => memo.answer(keyHash, reply, decodeLookup, onRecord), ignore, onError);
  }

  getById(id: string): Promise<ApiKey | null> {
    return this.layout.getById(id);
  }

  create(apiKey: ApiKey): Promise<ApiKey> {
    return this.layout.create(apiKey);
  }

  update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    return this.layout.update(id, changes, options);
  }

  /** Streams the keys `issuerId` issued, a page of `pageSize` ids per step. */
  listByIssuer(issuerId: string): AsyncIterable<ApiKey> {
    return this.layout.listByIssuer(issuerId);
  }

  delete(id: string): Promise<void> {
    return this.layout.delete(id);
  }

  listByOwner(ownerId: string, options: ListByOwnerOptions = {}): AsyncIterable<ApiKey> {
    return this.layout.listByOwner(ownerId, options);
  }

  /**
   * Deletes up to `limit` expired, then revoked records, found through the purge index
   * (two sorted sets by expiry and revocation time that every write keeps in step).
   * Layout 2: one script, atomic. Layout 3: each record decided and deleted on its own
   * slot; bounded by `limit` either way.
   */
  purge(options: PurgeOptions): Promise<number> {
    return this.layout.purge(options);
  }

  /**
   * Files every stored record in the purge index. Writes keep the index in step, so this
   * is needed once, after upgrading from a release without it: a record stored then and
   * not written since is otherwise invisible to `purge`. Walks the keys a page of
   * `pageSize` at a time, so it never blocks Redis for long; idempotent, and safe while
   * the app runs. Resolves to the number of records read.
   */
  rebuildPurgeIndex(): Promise<number> {
    return this.layout.rebuildPurgeIndex();
  }

  replaceHash(id: string, fromHash: string, toHash: string): Promise<boolean> {
    return this.layout.replaceHash(id, fromHash, toHash);
  }

  /**
   * Every owner's keys, newest first: the index across owners (`<base>all`) walked
   * backwards a page per step, or the owner's set when `ownerId` is given.
   * `environment` and `status` are applied to each page as it is read, so a rare
   * match costs a walk over the keys newer than it. The first call on a layout-2 store
   * written before the index existed fills it first (see {@link backfillListAllIndex}).
   */
  listAll(options: ListAllOptions): AsyncIterable<ApiKey> {
    return this.layout.listAll(options);
  }

  /**
   * Layout 2: adds every stored record to the index across owners that `listAll` walks,
   * from the owners' sets. Records created by this release are indexed as they are
   * created; the first `listAll` of a process runs this once when the store has not
   * been backfilled yet. Call it yourself after a rolling upgrade, once no instance of
   * an earlier release writes any more: keys those instances created in between are not
   * indexed until then. Idempotent; resolves when the whole keyspace has been scanned.
   * Layout 3 indexes every record from its create on: nothing to do.
   */
  backfillListAllIndex(): Promise<void> {
    return this.layout.backfillListAllIndex();
  }

  countByOwner(ownerId: string): Promise<number> {
    return this.layout.countByOwner(ownerId);
  }

  recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    return this.layout.recordUsage(id, usedAt, staleBefore);
  }

  /**
   * Layout 3 only: copies every record of a layout-2 store (this namespace's, or
   * `options.namespace`'s) into this backend's layout, a SCAN page at a time.
   * Idempotent and resumable: a record already copied is skipped unless layout 2 holds
   * a later version of it. Procedure: docs/redis.md, "Moving to layout 3".
   */
  migrateFromLayout2(options: LayoutMigrationOptions = {}): Promise<LayoutMigrationReport> {
    if (!(this.layout instanceof RedisLayoutV3)) {
      throw new Error('RedisBackend: migrateFromLayout2() copies into layout 3; this backend uses layout 2 (option "layout").');
    }
    return migrateFromLayout2(this.layout, { client: this.client, commands: this.commands, options: this.options }, options);
  }
}
