import type { ApiKey } from '../../api-key.interface.js';
import { ApiKeyNotFoundError, BackendUnavailableError, DuplicateApiKeyError } from '../../api-key.errors.js';
import type { ApiKeyBackend, ListByOwnerOptions } from '../backend.interface.js';
import {
  REDIS_SCHEMA_VERSION,
  resolveRedisBackendOptions,
  type RedisBackendOptions,
  type ResolvedRedisBackendOptions,
} from './redis-backend.options.js';
import { ReplyDeadlineExceeded, ReplyDeadlines } from '../../reply-deadlines.js';
import type { RedisCommandClient } from './redis-client.types.js';
import { decodeRecord, encodeFields, encodeNewRecord, MUTABLE_FIELDS, ownerEntry } from './redis-record.codec.js';
import { CREATE, DELETE, GET_BY_HASH, LIST_PAGE, RECORD_USAGE, UPDATE, type RedisScript } from './redis.scripts.js';

export type { RedisBackendOptions } from './redis-backend.options.js';
export type { RedisCommandClient } from './redis-client.types.js';

/**
 * Redis as the only key store. Layout, under `<namespace>v1:`:
 *
 * - `key:<id>`: a HASH with the record's fields (dates as epoch ms, JSON for scopes,
 *   metadata and policy);
 * - `hash:<keyHash>`: the id of the record with that key hash (the verification path);
 * - `owner:<ownerId>`: a sorted set of `<createdAt>:<id>` entries, all scored 0 so
 *   `listByOwner` pages by keyset with `ZRANGEBYLEX`, never with KEYS or SCAN.
 *
 * Every write is one Lua script, so it is atomic across all clients: a duplicate
 * `create` writes nothing, a usage write can never undo a revoke, and `delete` leaves
 * no index entry behind. Verification is one round trip.
 *
 * The backend never closes the client it was given; close it yourself on shutdown.
 * Runs on a standalone Redis (or a Sentinel-managed primary), not Redis Cluster.
 */
export class RedisBackend implements ApiKeyBackend {
  private readonly options: ResolvedRedisBackendOptions;
  private readonly base: string;
  private readonly deadlines: ReplyDeadlines | undefined;

  /**
   * @param client a connected node-redis v5 client (`createClient()` from `redis`), or
   *   anything with its `sendCommand(args)`. Create it with `disableOfflineQueue: true`
   *   so that, while Redis is unreachable, calls fail at once (503) rather than queue.
   */
  constructor(
    private readonly client: RedisCommandClient,
    options?: RedisBackendOptions,
  ) {
    if (typeof client?.sendCommand !== 'function') {
      throw new Error('RedisBackend: the client must be a node-redis client (or have its sendCommand(args) method).');
    }
    this.options = resolveRedisBackendOptions(options);
    this.base = `${this.options.namespace}${REDIS_SCHEMA_VERSION}:`;
    const timeout = this.options.commandTimeoutMs;
    this.deadlines = timeout > 0 ? new ReplyDeadlines(timeout) : undefined;
  }

  /** The prefix of every Redis key this backend writes, schema version included. */
  get keyPrefix(): string {
    return this.base;
  }

  async getByHash(keyHash: string): Promise<ApiKey | null> {
    const reply = await this.script('getByHash', GET_BY_HASH, [this.hashKey(keyHash)], [`${this.base}key:`]);
    const record = decodeRecord(reply);
    // Guards against an index entry left by a foreign writer: never answer with another key.
    return record && record.keyHash === keyHash ? record : null;
  }

  async getById(id: string): Promise<ApiKey | null> {
    return decodeRecord(await this.command('getById', ['HGETALL', this.recordKey(id)]));
  }

  async create(apiKey: ApiKey): Promise<ApiKey> {
    const fields = encodeNewRecord(apiKey);
    const outcome = await this.script(
      'create',
      CREATE,
      [this.recordKey(apiKey.id), this.hashKey(apiKey.keyHash), this.ownerKey(apiKey.ownerId)],
      [apiKey.id, ownerEntry(apiKey.createdAt, apiKey.id), this.expireAt(apiKey), ...fields],
    );
    if (outcome === 'id' || outcome === 'keyHash') throw new DuplicateApiKeyError(outcome);
    return decodeRecord(fields) as ApiKey;
  }

  async update(apiKey: ApiKey): Promise<ApiKey> {
    const reply = await this.script(
      'update',
      UPDATE,
      [this.recordKey(apiKey.id)],
      [
        this.base,
        this.options.expireRecords ? '1' : '0',
        this.expireAt(apiKey),
        ...encodeFields(apiKey, MUTABLE_FIELDS),
      ],
    );
    const stored = decodeRecord(reply);
    if (!stored) throw new ApiKeyNotFoundError(apiKey.id);
    return stored;
  }

  async delete(id: string): Promise<void> {
    await this.script('delete', DELETE, [this.recordKey(id)], [this.base, id]);
  }

  async *listByOwner(ownerId: string, options: ListByOwnerOptions = {}): AsyncIterable<ApiKey> {
    const { limit, after } = options;
    let bound = after ? `(${ownerEntry(after.createdAt, after.id)}` : '-';
    let yielded = 0;
    while (limit === undefined || yielded < limit) {
      const want = limit === undefined ? this.options.pageSize : Math.min(this.options.pageSize, limit - yielded);
      const reply = (await this.script(
        'listByOwner',
        LIST_PAGE,
        [this.ownerKey(ownerId)],
        [`${this.base}key:`, bound, String(want), ownerId],
      )) as [unknown[], unknown[]];
      const [entries, records] = reply;
      for (const fields of records) {
        const record = decodeRecord(fields);
        if (record) {
          yielded++;
          yield record;
        }
      }
      if (entries.length < want) return;
      bound = `(${String(entries[entries.length - 1])}`;
    }
  }

  async countByOwner(ownerId: string): Promise<number> {
    return Number(await this.command('countByOwner', ['ZCARD', this.ownerKey(ownerId)]));
  }

  async recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    const wrote = await this.script(
      'recordUsage',
      RECORD_USAGE,
      [this.recordKey(id)],
      [String(usedAt.getTime()), String(staleBefore.getTime())],
    );
    return Number(wrote) === 1;
  }

  private recordKey(id: string): string {
    return `${this.base}key:${id}`;
  }

  private hashKey(keyHash: string): string {
    return `${this.base}hash:${keyHash}`;
  }

  private ownerKey(ownerId: string): string {
    return `${this.base}owner:${ownerId}`;
  }

  /** When Redis should drop the record: '' for never. */
  private expireAt(apiKey: ApiKey): string {
    if (!this.options.expireRecords || !apiKey.expiresAt) return '';
    return String(apiKey.expiresAt.getTime() + this.options.expiredRetentionMs);
  }

  private script(operation: string, script: RedisScript, keys: string[], args: string[]): Promise<unknown> {
    return this.guard(operation, () => script.run(this.client, keys, args));
  }

  private command(operation: string, args: string[]): Promise<unknown> {
    return this.guard(operation, () => this.client.sendCommand(args));
  }

  /**
   * Turns every client failure (refused connection, offline client, error reply) and
   * a reply slower than `commandTimeoutMs` into `BackendUnavailableError`. Only the
   * error's class name goes into the message: a reply's text can echo command
   * arguments, and those include key hashes.
   */
  private async guard<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      // Not node-redis's per-command `timeout`: it only covers commands not yet written
      // (not a hung server) and its timer per command cut throughput threefold.
      return await (this.deadlines ? this.deadlines.track(run()) : run());
    } catch (error) {
      if (error instanceof ReplyDeadlineExceeded) {
        // A write that timed out may still have been applied, all or nothing (scripts are atomic).
        throw new BackendUnavailableError(`Redis did not answer ${operation} within ${error.ms} ms.`, { cause: error });
      }
      const kind = error instanceof Error ? error.constructor.name : typeof error;
      throw new BackendUnavailableError(`Redis could not complete ${operation} (${kind}).`, { cause: error });
    }
  }
}
