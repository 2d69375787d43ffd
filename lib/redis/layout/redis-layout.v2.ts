import type { ApiKey } from '../../api-key.interface.js';
import { ApiKeyNotFoundError, DuplicateApiKeyError, VersionConflictError } from '../../api-key.errors.js';
import { changedFields } from '../../backends/apply-changes.js';
import type { ApiKeyChanges, ListAllOptions, ListByOwnerOptions, PurgeOptions, UpdateOptions } from '../../backends/backend.interface.js';
import { matchesListAllFilters } from '../../backends/key-status.js';
import { sendCommandForKey } from '../redis-cluster.client.js';
import { RedisBackendKeys } from '../redis-backend.keys.js';
import { INDEX_RECORDS, PURGE, REPLACE_HASH } from '../redis-lifecycle.scripts.js';
import { encodeChanges, encodeStoredRecord, ownerEntry } from '../redis-record.codec.js';
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
} from '../redis.scripts.js';
import { decodeRecord, escapeGlob, type RedisLayout, type RedisLayoutContext } from './redis-layout.js';

/**
 * Layout 2: every write one Lua script reaching every key of the record (record, id
 * index, owner set, the index across owners, issuer set, purge index), atomic. On a
 * cluster its keys must share one slot (a hash-tagged namespace).
 */
export class RedisLayoutV2 implements RedisLayout {
  private readonly keys: RedisBackendKeys;
  /** Settles once the index across owners is known to hold every record (see `backfillListAllIndex`). */
  private listAllIndexReady: Promise<void> | null = null;

  constructor(private readonly ctx: RedisLayoutContext) {
    this.keys = new RedisBackendKeys(ctx.base);
  }

  get keyPrefix(): string {
    return this.ctx.base;
  }

  recordKey(keyHash: string): string {
    return this.keys.record(keyHash);
  }

  getById(id: string): Promise<ApiKey | null> {
    return this.ctx.commands.script('getById', GET_BY_ID, [this.keys.id(id)], [this.ctx.base], (reply) => {
      const record = decodeRecord('getById', reply);
      return record && record.id === id ? record : null;
    });
  }

  async create(apiKey: ApiKey): Promise<ApiKey> {
    const stored = encodeStoredRecord(apiKey, this.ctx.options.recordEncoding);
    const keys = [this.keys.id(apiKey.id), this.keys.record(apiKey.keyHash), this.keys.owner(apiKey.ownerId), this.keys.all()];
    if (apiKey.issuedById != null) keys.push(this.keys.issuer(apiKey.issuedById));
    const outcome = await this.ctx.commands.script('create', CREATE, keys, [
      apiKey.keyHash,
      ownerEntry(apiKey.createdAt, apiKey.id),
      this.expireAt(apiKey.expiresAt),
      stored,
      apiKey.id,
      this.ctx.base,
    ]);
    if (outcome === 'id' || outcome === 'keyHash') throw new DuplicateApiKeyError(outcome);
    return decodeRecord('create', stored) as ApiKey;
  }

  async update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    const fields = changedFields(changes);
    // The expiry Redis keeps follows `expiresAt`: moved only when the update moves it.
    const expiry = fields.includes('expiresAt') && this.ctx.options.expireRecords ? this.expireAt(changes.expiresAt ?? null) : '-';
    const expected = options?.expectedVersion;
    const reply = await this.ctx.commands.script('update', UPDATE, [this.keys.id(id)], [
      this.ctx.base,
      expected === undefined ? '' : String(expected),
      expiry,
      String(this.ctx.options.recordEncoding),
      ...encodeChanges(changes, [...fields, 'updatedAt']),
    ]);
    if (Array.isArray(reply) && reply[0] === 'conflict') throw new VersionConflictError(id, expected!, Number(reply[1]));
    const stored = decodeRecord('update', reply);
    if (!stored) throw new ApiKeyNotFoundError(id);
    return stored;
  }

  async *listByIssuer(issuerId: string): AsyncIterable<ApiKey> {
    let cursor = '0';
    do {
      const [next, records] = (await this.ctx.commands.script(
        'listByIssuer',
        LIST_ISSUED_PAGE,
        [this.keys.issuer(issuerId)],
        [this.ctx.base, cursor, String(this.ctx.options.pageSize), issuerId],
      )) as [unknown, unknown[]];
      for (const stored of records) {
        const record = decodeRecord('listByIssuer', stored);
        if (record) yield record;
      }
      cursor = String(next);
    } while (cursor !== '0');
  }

  async delete(id: string): Promise<void> {
    await this.ctx.commands.script('delete', DELETE, [this.keys.id(id)], [this.ctx.base, id]);
  }

  async *listByOwner(ownerId: string, options: ListByOwnerOptions): AsyncIterable<ApiKey> {
    const { limit, after } = options;
    let bound = after ? `(${ownerEntry(after.createdAt, after.id)}` : '-';
    let yielded = 0;
    while (limit === undefined || yielded < limit) {
      const want = limit === undefined ? this.ctx.options.pageSize : Math.min(this.ctx.options.pageSize, limit - yielded);
      const [entries, records] = (await this.ctx.commands.script(
        'listByOwner',
        LIST_PAGE,
        [this.keys.owner(ownerId)],
        [this.ctx.base, bound, String(want), ownerId],
      )) as [unknown[], unknown[]];
      for (const stored of records) {
        const record = decodeRecord('listByOwner', stored);
        if (record) {
          yielded++;
          yield record;
        }
      }
      if (entries.length < want) return;
      bound = `(${String(entries[entries.length - 1])}`;
    }
  }

  async purge(options: PurgeOptions): Promise<number> {
    const bound = (date: Date | undefined) => (date === undefined ? '' : String(date.getTime()));
    const reply = (await this.ctx.commands.script(
      'purge',
      PURGE,
      [`${this.ctx.base}expiring`, `${this.ctx.base}revoked`],
      [this.ctx.base, bound(options.expiredBefore), bound(options.revokedBefore), String(options.limit)],
    )) as unknown[];
    const deleted: Array<{ id: string; keyHash: string }> = [];
    for (let i = 0; i + 1 < reply.length; i += 2) deleted.push({ id: String(reply[i]), keyHash: String(reply[i + 1]) });
    if (deleted.length > 0) options.onDeleted?.(deleted);
    return deleted.length;
  }

  async rebuildPurgeIndex(): Promise<number> {
    const anchor = `${this.ctx.base}expiring`;
    const pattern = `${escapeGlob(this.ctx.base)}id:*`;
    let cursor = '0';
    let indexed = 0;
    do {
      // Routed by a key of this layout: on a cluster, its one slot's node holds every key.
      const [next, keys] = (await this.ctx.commands.guard('rebuildPurgeIndex', () =>
        sendCommandForKey(this.ctx.client, anchor, ['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(this.ctx.options.pageSize)]),
      )) as [unknown, unknown[]];
      if (keys.length > 0) {
        indexed += Number(await this.ctx.commands.script('rebuildPurgeIndex', INDEX_RECORDS, keys.map(String), [this.ctx.base]));
      }
      cursor = String(next);
    } while (cursor !== '0');
    return indexed;
  }

  async replaceHash(id: string, fromHash: string, toHash: string): Promise<boolean> {
    const keys = [this.keys.id(id), this.keys.record(fromHash), this.keys.record(toHash)];
    const outcome = await this.ctx.commands.script('replaceHash', REPLACE_HASH, keys, [fromHash, toHash, id]);
    if (outcome === 'keyHash') throw new DuplicateApiKeyError('keyHash');
    return Number(outcome) === 1;
  }

  async *listAll(options: ListAllOptions): AsyncIterable<ApiKey> {
    const { limit, after, ownerId } = options;
    if (ownerId === undefined) await this.ensureListAllIndex();
    const set = ownerId === undefined ? this.keys.all() : this.keys.owner(ownerId);
    let bound = after ? `(${ownerEntry(after.createdAt, after.id)}` : '+';
    let yielded = 0;
    while (limit === undefined || yielded < limit) {
      const want = this.ctx.options.pageSize;
      const [entries, records] = (await this.ctx.commands.script('listAll', LIST_ALL_PAGE, [set], [
        this.ctx.base,
        bound,
        String(want),
        ownerId ?? '',
      ])) as [unknown[], unknown[]];
      for (const stored of records) {
        const record = decodeRecord('listAll', stored);
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

  async backfillListAllIndex(): Promise<void> {
    const pattern = `${escapeGlob(this.ctx.base)}owner:*`;
    let cursor = '0';
    do {
      cursor = String(
        await this.ctx.commands.script('backfillListAllIndex', BACKFILL_ALL_INDEX, [this.keys.all()], [cursor, '200', pattern]),
      );
    } while (cursor !== '0');
    await this.ctx.commands.command('backfillListAllIndex', ['SET', this.keys.allIndexed(), '1']);
  }

  /** Backfills the index across owners once per process when the store says it never was. */
  private ensureListAllIndex(): Promise<void> {
    this.listAllIndexReady ??= (async () => {
      const done = await this.ctx.commands.command('listAll', ['GET', this.keys.allIndexed()]);
      if (done === null || done === undefined) await this.backfillListAllIndex();
    })().catch((error: unknown) => {
      this.listAllIndexReady = null;
      throw error;
    });
    return this.listAllIndexReady;
  }

  async countByOwner(ownerId: string): Promise<number> {
    return Number(await this.ctx.commands.command('countByOwner', ['ZCARD', this.keys.owner(ownerId)]));
  }

  async recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    const wrote = await this.ctx.commands.script('recordUsage', RECORD_USAGE, [this.keys.id(id)], [
      this.ctx.base,
      String(usedAt.getTime()),
      String(staleBefore.getTime()),
      String(this.ctx.options.recordEncoding),
    ]);
    return Number(wrote) === 1;
  }

  /** When Redis should drop the record: '' for never. */
  private expireAt(expiresAt: Date | null): string {
    if (!this.ctx.options.expireRecords || !expiresAt) return '';
    return String(expiresAt.getTime() + this.ctx.options.expiredRetentionMs);
  }
}
