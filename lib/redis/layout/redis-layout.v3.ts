import type { ApiKey } from '../../api-key.interface.js';
import { ApiKeyNotFoundError, BackendUnavailableError, DuplicateApiKeyError, VersionConflictError } from '../../api-key.errors.js';
import { changedFields } from '../../backends/apply-changes.js';
import type { ApiKeyChanges, ListAllOptions, ListByOwnerOptions, PurgeOptions, UpdateOptions } from '../../backends/backend.interface.js';
import { encodeChanges, encodeStoredRecord } from '../redis-record.codec.js';
import { decodeRecord, type RedisLayout, type RedisLayoutContext } from './redis-layout.js';
import type { RedisLayoutTestHooks } from './redis-layout.v3.hooks.js';
import { assertLayoutV3Namespace } from './redis-layout.v3.keys.js';
import { V3Lifecycle } from './redis-layout.v3.lifecycle.js';
import { V3Lists } from './redis-layout.v3.lists.js';
import { V3Move } from './redis-layout.v3.move.js';
import { committedPointer, parsePointer, pendingPointer, type RedisPointer } from './redis-layout.v3.pointer.js';
import { CLAIM, COMMIT, DELETE_RECORD, OVERWRITE, UPDATE_RECORD, USAGE_RECORD } from './redis-layout.v3.scripts.js';
import { V3Store } from './redis-layout.v3.store.js';

/** Attempts of a write that meets a move in progress (it finishes the move, then retries). */
const ATTEMPTS = 3;

/**
 * Layout 3 (`<namespace>v3:`): keys spread over slots. A record and each index is its
 * own hash tag; each single-key invariant (unique hash, sticky revocation, monotonic
 * `lastUsedAt`, immutable `keyHash`/`createdAt`, versions) is one script on one slot,
 * and what spans slots is ordered around the record write, the commit point: the id
 * pointer and index entries that make a record reachable are written (pending) before
 * it, those of a removed record are removed after it, and readers skip, then repair,
 * what an interrupted write left. Steps and guarantees: docs/redis.md, "Layout 3".
 */
export class RedisLayoutV3 implements RedisLayout {
  private readonly store: V3Store;
  private readonly move: V3Move;
  private readonly lists: V3Lists;
  private readonly lifecycle: V3Lifecycle;

  constructor(ctx: RedisLayoutContext, hooks?: RedisLayoutTestHooks) {
    assertLayoutV3Namespace(ctx.options.namespace);
    this.store = new V3Store(ctx, hooks);
    this.move = new V3Move(this.store);
    this.lists = new V3Lists(this.store);
    this.lifecycle = new V3Lifecycle(this.store, this.move, this.lists);
  }

  get keyPrefix(): string {
    return this.store.ctx.base;
  }

  recordKey(keyHash: string): string {
    return this.store.keys.record(keyHash);
  }

  async getById(id: string): Promise<ApiKey | null> {
    const pointer = await this.store.pointer('getById', id);
    return pointer && ((await this.store.recordVia('getById', id, pointer))?.record ?? null);
  }

  /** 1 claim the id pointer (pending) · 2 index entries (pending) and purge index · 3 the record (commit) · 4 settle pointer and entries. */
  create(apiKey: ApiKey): Promise<ApiKey> {
    const stored = encodeStoredRecord(apiKey, this.store.ctx.options.recordEncoding);
    return this.insert(stored, this.store.expireAt(apiKey.expiresAt));
  }

  /**
   * Migration: stores a layout-2 record (its stored text, as it is) unless this layout
   * holds its id already, in which case a later version replaces it.
   */
  async copy(stored: string, expireAt: string): Promise<'copied' | 'updated' | 'unchanged' | 'conflict'> {
    const record = decodeRecord('migrateFromLayout2', stored) as ApiKey;
    const existing = await this.getById(record.id);
    if (!existing) {
      try {
        await this.insert(stored, expireAt);
        return 'copied';
      } catch (error) {
        if (error instanceof DuplicateApiKeyError) return 'conflict';
        throw error;
      }
    }
    if (existing.keyHash !== record.keyHash) return 'conflict';
    const { store } = this;
    const keys = [store.keys.record(record.keyHash), store.keys.moving(record.keyHash)];
    const outcome = await store.script<unknown>('migrateFromLayout2', OVERWRITE, keys, [record.id, stored, String(record.version), expireAt]);
    if (outcome !== 'updated') return outcome === 'unchanged' ? 'unchanged' : 'conflict';
    if (expireAt !== '') await store.write('migrateFromLayout2', ['PEXPIREAT', store.keys.pointer(record.id), store.pointerExpireAt(expireAt), 'GT']);
    await store.fileLifecycle('migrateFromLayout2', record, expireAt !== '');
    return 'updated';
  }

  private async insert(stored: string, expireAt: string): Promise<ApiKey> {
    const op = 'create';
    const { store } = this;
    const record = decodeRecord(op, stored) as ApiKey;
    const { id, keyHash: hash } = record;
    const held = await this.claim(id, hash, store.pointerExpireAt(expireAt));
    await store.step(op, 1);

    const entries = store.entriesOf(record);
    await Promise.all([store.entries(op, entries, 'add'), store.fileLifecycle(op, record, expireAt !== '')]);
    await store.step(op, 2);

    const keys = [store.keys.record(hash), store.keys.moving(hash)];
    const outcome = await store.script(op, COMMIT, keys, [stored, id, expireAt]);
    if (outcome === 'keyHash') {
      // Another key's hash: take back what made this id reachable. A crash here leaves
      // entries whose pointer leads to no record of theirs, which readers repair.
      await Promise.all([store.entries(op, entries, 'remove'), store.dropLifecycle(op, id), store.swapPointer(op, id, held, '')]);
      throw new DuplicateApiKeyError('keyHash');
    }
    if (outcome === 'id') throw new DuplicateApiKeyError('id');
    await store.step(op, 3);

    const committed = committedPointer(hash);
    const [settled] = await Promise.all([
      held === committed ? Promise.resolve(true) : store.swapPointer(op, id, held, committed),
      store.entries(op, entries, 'settle'),
    ]);
    const now = settled ? null : await store.pointer(op, id);
    // No pointer at all: it expired with the record (an expiresAt already past, with expireRecords).
    if (now && now.raw !== committed) {
      // Stalled past the grace period, this create lost its claim to a later create of
      // the id. The plaintext was never handed out, so no one verified with it: undo.
      await store.script(op, DELETE_RECORD, keys, [id]);
      throw new DuplicateApiKeyError('id');
    }
    await store.step(op, 4);
    return record;
  }

  /**
   * Claims the id pointer, or resumes a claim of this very hash (a retried create), or
   * takes over one a crashed create left (pending past the grace period, or a removed
   * record's). Resolves to the pointer value held.
   */
  private async claim(id: string, hash: string, pointerExpireAt: string): Promise<string> {
    const op = 'create';
    const { store } = this;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const mine = pendingPointer(hash, store.now());
      const current = await store.script<unknown>(op, CLAIM, [store.keys.pointer(id)], [mine, pointerExpireAt]);
      if (current === null || current === undefined) return mine;
      const pointer = parsePointer(current)!;
      if (pointer.state !== 'moving' && pointer.hash === hash) return pointer.raw;
      if ((await store.recordVia(op, id, pointer)) || store.inFlight(pointer)) throw new DuplicateApiKeyError('id');
      if (await store.swapPointer(op, id, pointer.raw, mine, pointerExpireAt)) return mine;
    }
    throw new DuplicateApiKeyError('id');
  }

  /** The pointer and hash a write goes to, a move in progress finished first; `null` without a pointer. */
  private async writable(operation: string, id: string): Promise<{ pointer: RedisPointer; hash: string } | null> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const pointer = await this.store.pointer(operation, id);
      if (!pointer) return null;
      if (pointer.state !== 'moving') return { pointer, hash: pointer.hash };
      await this.move.finish(operation, id, pointer);
    }
    throw new BackendUnavailableError(`RedisBackend: ${operation} kept meeting a move of the key's hash; try again.`);
  }

  /** 1 read the pointer · 2 (expiry or revocation given) extend the pointer's TTL, file a lower bound in the purge index · 3 the record (commit) · 4 file the purge index exactly. */
  async update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    const op = 'update';
    const { store } = this;
    const fields = changedFields(changes);
    const movesExpiry = fields.includes('expiresAt') && store.ctx.options.expireRecords;
    const expiry = movesExpiry ? store.expireAt(changes.expiresAt ?? null) : '-';
    const expected = options?.expectedVersion;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const target = await this.writable(op, id);
      if (!target) throw new ApiKeyNotFoundError(id);
      await store.step(op, 1);

      const before: Array<Promise<unknown>> = [];
      const pointerKey = store.keys.pointer(id);
      // The pointer's TTL only ever grows, so it always outlives the record.
      if (expiry === '') before.push(store.write(op, ['PERSIST', pointerKey]));
      else if (expiry !== '-') before.push(store.write(op, ['PEXPIREAT', pointerKey, store.pointerExpireAt(expiry), 'GT']));
      // Lower bounds: purge finds the record whatever the commit below does, and checks the record itself.
      if (changes.revokedAt) before.push(store.write(op, ['ZADD', store.keys.revoked(), 'LT', String(changes.revokedAt.getTime()), id]));
      if (changes.expiresAt && !movesExpiry) before.push(store.write(op, ['ZADD', store.keys.expiring(), 'LT', String(changes.expiresAt.getTime()), id]));
      if (before.length > 0) {
        await Promise.all(before);
        await store.step(op, 2);
      }

      const reply = (await store.script<unknown>(op, UPDATE_RECORD, [store.keys.record(target.hash), store.keys.moving(target.hash)], [
        id,
        expected === undefined ? '' : String(expected),
        expiry,
        String(store.ctx.options.recordEncoding),
        ...encodeChanges(changes, [...fields, 'updatedAt']),
      ])) as unknown[] | null;
      if (!reply) throw new ApiKeyNotFoundError(id);
      if (reply[0] === 'moved') continue;
      if (reply[0] === 'conflict') throw new VersionConflictError(id, expected!, Number(reply[1]));
      const record = decodeRecord(op, reply[1]) as ApiKey;
      await store.step(op, 3);
      if (fields.includes('expiresAt') || fields.includes('revokedAt')) {
        await store.fileLifecycle(op, record, Number(reply[2]) > 0);
        await store.step(op, 4);
      }
      return record;
    }
    throw new BackendUnavailableError('RedisBackend: update kept meeting a move of the key\'s hash; try again.');
  }

  /** 1 read the pointer · 2 delete the record (commit: it stops verifying) · 3 remove entries, purge index, pointer. */
  async delete(id: string): Promise<void> {
    const op = 'delete';
    const { store } = this;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const target = await this.writable(op, id);
      if (!target) return;
      await store.step(op, 1);
      const reply = (await store.script<unknown>(op, DELETE_RECORD, [store.keys.record(target.hash), store.keys.moving(target.hash)], [id])) as
        | unknown[]
        | null;
      if (reply?.[0] === 'moved') continue;
      await store.step(op, 2);
      if (reply?.[0] === 'deleted') {
        await store.forget(op, decodeRecord(op, reply[1]) as ApiKey, target.pointer.raw);
      } else if (!store.inFlight(target.pointer)) {
        // No record: a removed one whose clean-up was cut short (its entries are repaired
        // by readers), or a create that crashed. One in flight is left alone.
        await Promise.all([store.swapPointer(op, id, target.pointer.raw, ''), store.dropLifecycle(op, id)]);
      }
      await store.step(op, 3);
      return;
    }
    throw new BackendUnavailableError('RedisBackend: delete kept meeting a move of the key\'s hash; try again.');
  }

  async recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    const op = 'recordUsage';
    const { store } = this;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const target = await this.writable(op, id);
      if (!target) return false;
      const wrote = await store.script<unknown>(op, USAGE_RECORD, [store.keys.record(target.hash), store.keys.moving(target.hash)], [
        id,
        String(usedAt.getTime()),
        String(staleBefore.getTime()),
        String(store.ctx.options.recordEncoding),
      ]);
      if (wrote !== 'moved') return Number(wrote) === 1;
    }
    return false;
  }

  listByOwner(ownerId: string, options: ListByOwnerOptions): AsyncIterable<ApiKey> {
    return this.lists.listByOwner(ownerId, options);
  }

  countByOwner(ownerId: string): Promise<number> {
    return this.store.read<unknown>('countByOwner', ['ZCARD', this.store.keys.owner(ownerId)]).then(Number);
  }

  listByIssuer(issuerId: string): AsyncIterable<ApiKey> {
    return this.lists.listByIssuer(issuerId);
  }

  listAll(options: ListAllOptions): AsyncIterable<ApiKey> {
    return this.lists.listAll(options);
  }

  /** Layout 3 files every record in the index across owners from its create on: nothing to fill. */
  async backfillListAllIndex(): Promise<void> {}

  purge(options: PurgeOptions): Promise<number> {
    return this.lifecycle.purge(options);
  }

  rebuildPurgeIndex(): Promise<number> {
    return this.lifecycle.rebuildPurgeIndex();
  }

  replaceHash(id: string, fromHash: string, toHash: string): Promise<boolean> {
    return this.move.replaceHash(id, fromHash, toHash);
  }
}
