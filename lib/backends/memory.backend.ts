import { cloneApiKey, type ApiKey } from '../api-key.interface.js';
import { ApiKeyNotFoundError, DuplicateApiKeyError } from '../api-key.errors.js';
import type { CachedLookup } from '../cache/cached-lookup.interface.js';
import { snapshotApiKey, type CachedApiKey } from '../cache/l1-cache.js';
import { applyChanges } from './apply-changes.js';
import type { ApiKeyBackend, ApiKeyChanges, ListAllOptions, ListByOwnerOptions, PurgeOptions, UpdateOptions } from './backend.interface.js';
import { isPurgeable } from './purge-criteria.js';
import { compareByCursor, isAfterCursor } from './cursor.js';
import { compareNewestFirst, isBeforeCursor, matchesListAllFilters } from './key-status.js';

/**
 * Keeps keys in process memory, indexed by id, hash and owner. Every operation runs
 * without awaiting in the middle, so concurrent calls never interleave; records are
 * copied in and out. Keys are lost on restart: for development, tests and single-process
 * tools, not production.
 */
export class MemoryBackend implements ApiKeyBackend, CachedLookup {
  private readonly byId = new Map<string, ApiKey>();
  /**
   * Frozen snapshots for the service's synchronous fast path, built on first use and
   * dropped by every write to their record, so a verification costs no copy.
   */
  private readonly snapshots = new Map<string, CachedApiKey>();
  private readonly idByHash = new Map<string, string>();
  private readonly idsByOwner = new Map<string, Set<string>>();
  /** Ids of the keys each key issued (`issuedById` never changes after create). */
  private readonly idsByIssuer = new Map<string, Set<string>>();

  /** Number of stored records. */
  get size(): number {
    return this.byId.size;
  }

  async getByHash(keyHash: string): Promise<ApiKey | null> {
    const id = this.idByHash.get(keyHash);
    const record = id === undefined ? undefined : this.byId.get(id);
    return record ? cloneApiKey(record) : null;
  }

  /**
   * The record for a hash without a promise or a copy; memory is authoritative, so an
   * unknown hash is a definite `null`. The fast path steps aside (answers `undefined`,
   * "ask getByHash") whenever `getByHash` is not this class's own, so a subclass or a
   * Proxy that instruments or fails lookups is always consulted.
   */
  peekByHash(keyHash: string): CachedApiKey | null | undefined {
    if (this.getByHash !== MemoryBackend.prototype.getByHash) return undefined;
    const id = this.idByHash.get(keyHash);
    if (id === undefined) return null;
    let snapshot = this.snapshots.get(id);
    if (snapshot === undefined) {
      const record = this.byId.get(id);
      if (record === undefined) return null;
      snapshot = snapshotApiKey(record);
      this.snapshots.set(id, snapshot);
    }
    return snapshot;
  }

  async getById(id: string): Promise<ApiKey | null> {
    const record = this.byId.get(id);
    return record ? cloneApiKey(record) : null;
  }

  async create(apiKey: ApiKey): Promise<ApiKey> {
    if (this.byId.has(apiKey.id)) throw new DuplicateApiKeyError('id');
    if (this.idByHash.has(apiKey.keyHash)) throw new DuplicateApiKeyError('keyHash');
    const stored = cloneApiKey(apiKey);
    this.byId.set(stored.id, stored);
    this.idByHash.set(stored.keyHash, stored.id);
    let owned = this.idsByOwner.get(stored.ownerId);
    if (!owned) this.idsByOwner.set(stored.ownerId, (owned = new Set()));
    owned.add(stored.id);
    if (stored.issuedById != null) {
      let issued = this.idsByIssuer.get(stored.issuedById);
      if (!issued) this.idsByIssuer.set(stored.issuedById, (issued = new Set()));
      issued.add(stored.id);
    }
    return cloneApiKey(stored);
  }

  async update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    const current = this.byId.get(id);
    if (!current) throw new ApiKeyNotFoundError(id);
    // No await between the read and the write: concurrent updates cannot interleave.
    const next = applyChanges(current, changes, options);
    this.byId.set(id, next);
    this.snapshots.delete(id);
    return cloneApiKey(next);
  }

  async *listByIssuer(issuerId: string): AsyncIterable<ApiKey> {
    // Snapshot ids, then re-read each: writes during iteration are safe.
    const ids = [...(this.idsByIssuer.get(issuerId) ?? [])];
    for (const id of ids) {
      const current = this.byId.get(id);
      if (current && current.issuedById === issuerId) yield cloneApiKey(current);
    }
  }

  async delete(id: string): Promise<void> {
    const current = this.byId.get(id);
    if (!current) return;
    this.byId.delete(id);
    this.snapshots.delete(id);
    this.idByHash.delete(current.keyHash);
    const owned = this.idsByOwner.get(current.ownerId);
    owned?.delete(id);
    if (owned?.size === 0) this.idsByOwner.delete(current.ownerId);
    if (current.issuedById != null) {
      const issued = this.idsByIssuer.get(current.issuedById);
      issued?.delete(id);
      if (issued?.size === 0) this.idsByIssuer.delete(current.issuedById);
    }
  }

  async *listByOwner(ownerId: string, options: ListByOwnerOptions = {}): AsyncIterable<ApiKey> {
    // Snapshot ids (not records) so concurrent writes during iteration are safe.
    const records = [...(this.idsByOwner.get(ownerId) ?? [])]
      .map((id) => this.byId.get(id))
      .filter((r): r is ApiKey => r !== undefined && isAfterCursor(r, options.after))
      .sort(compareByCursor);
    let yielded = 0;
    for (const record of records) {
      if (options.limit !== undefined && yielded >= options.limit) return;
      // Re-read: the record may have been deleted or changed since the snapshot.
      const current = this.byId.get(record.id);
      if (!current || current.ownerId !== ownerId) continue;
      yielded++;
      yield cloneApiKey(current);
    }
  }

  /**
   * Every owner's keys, newest first. Sorts the matching records on each call: fine for
   * the development store, where the whole set is in this process anyway.
   */
  async *listAll(options: ListAllOptions): AsyncIterable<ApiKey> {
    const ids = options.ownerId === undefined ? [...this.byId.keys()] : [...(this.idsByOwner.get(options.ownerId) ?? [])];
    const records = ids
      .map((id) => this.byId.get(id))
      .filter((r): r is ApiKey => r !== undefined && isBeforeCursor(r, options.after) && matchesListAllFilters(r, options))
      .sort(compareNewestFirst);
    let yielded = 0;
    for (const record of records) {
      if (options.limit !== undefined && yielded >= options.limit) return;
      // Re-read: the record may have been deleted or changed since the snapshot.
      const current = this.byId.get(record.id);
      if (!current || !matchesListAllFilters(current, options)) continue;
      yielded++;
      yield cloneApiKey(current);
    }
  }

  async countByOwner(ownerId: string): Promise<number> {
    return this.idsByOwner.get(ownerId)?.size ?? 0;
  }

  async recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    const current = this.byId.get(id);
    if (!current) return false;
    if (current.lastUsedAt && current.lastUsedAt.getTime() >= staleBefore.getTime()) return false;
    current.lastUsedAt = new Date(usedAt);
    this.snapshots.delete(id);
    return true;
  }

  async purge(options: PurgeOptions): Promise<number> {
    const victims: ApiKey[] = [];
    for (const record of this.byId.values()) {
      if (victims.length >= options.limit) break;
      if (isPurgeable(record, options)) victims.push(record);
    }
    // `delete` runs to completion synchronously: no other call interleaves with the batch.
    for (const record of victims) void this.delete(record.id);
    if (victims.length > 0) options.onDeleted?.(victims.map(({ id, keyHash }) => ({ id, keyHash })));
    return victims.length;
  }

  async replaceHash(id: string, fromHash: string, toHash: string): Promise<boolean> {
    const current = this.byId.get(id);
    if (!current || current.keyHash !== fromHash) return false;
    if (this.idByHash.has(toHash)) throw new DuplicateApiKeyError('keyHash');
    // No await between the check and the move: concurrent calls cannot both win.
    this.byId.set(id, { ...current, keyHash: toHash });
    this.idByHash.delete(fromHash);
    this.idByHash.set(toHash, id);
    this.snapshots.delete(id);
    return true;
  }

  /** Removes every record. For tests. */
  clear(): void {
    this.byId.clear();
    this.snapshots.clear();
    this.idByHash.clear();
    this.idsByOwner.clear();
    this.idsByIssuer.clear();
  }
}
