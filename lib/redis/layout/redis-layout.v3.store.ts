import type { ApiKey } from '../../api-key.interface.js';
import type { RedisScript } from '../redis.scripts.js';
import { ownerEntry } from '../redis-record.codec.js';
import { decodeRecord, type RedisLayoutContext } from './redis-layout.js';
import type { RedisLayoutTestHooks } from './redis-layout.v3.hooks.js';
import { RedisLayoutV3Keys } from './redis-layout.v3.keys.js';
import { hashesOf, parsePointer, type RedisPointer } from './redis-layout.v3.pointer.js';
import { INDEX_ENTRY, LIFECYCLE_SYNC, POINTER_SWAP } from './redis-layout.v3.scripts.js';

/** One index entry of a record: the index, its kind ('z' ZSET of owner entries, 's' SET of ids) and the member. */
export interface IndexEntry {
  key: string;
  kind: 'z' | 's';
  member: string;
}

/** A record found through its id pointer, with the hash it is stored under. */
export interface FoundRecord {
  record: ApiKey;
  hash: string;
}

/**
 * The primitives layout 3's operations are made of: one command or one single-slot
 * script each, plus the clock and the grace period of pending marks.
 */
export class V3Store {
  readonly keys: RedisLayoutV3Keys;
  /**
   * How long an index entry or a pointer a write filed before its record committed is
   * taken for a write in progress (kept, not shown) rather than a crashed one
   * (removed): far longer than a write takes, so only a writer stalled past every
   * deadline can lose its entry (and the create's last step puts it back then).
   */
  readonly graceMs: number;

  constructor(
    readonly ctx: RedisLayoutContext,
    private readonly hooks: RedisLayoutTestHooks = {},
  ) {
    this.keys = new RedisLayoutV3Keys(ctx.base);
    this.graceMs = Math.max(60_000, 2 * ctx.options.commandTimeoutMs);
  }

  now(): number {
    return this.hooks.now ? this.hooks.now() : Date.now();
  }

  /** Marks the end of step `n` of a multi-step write (a no-op outside crash tests). */
  async step(operation: string, n: number): Promise<void> {
    if (this.hooks.afterStep) await this.hooks.afterStep(operation, n);
  }

  script<T = unknown>(operation: string, script: RedisScript, keys: string[], args: string[]): Promise<T> {
    return this.ctx.commands.script(operation, script, keys, args) as Promise<T>;
  }

  read<T = unknown>(operation: string, args: string[]): Promise<T> {
    return this.ctx.commands.command(operation, args) as Promise<T>;
  }

  write<T = unknown>(operation: string, args: string[]): Promise<T> {
    return this.ctx.commands.write(operation, args) as Promise<T>;
  }

  async pointer(operation: string, id: string): Promise<RedisPointer | null> {
    return parsePointer(await this.read(operation, ['GET', this.keys.pointer(id)]));
  }

  swapPointer(operation: string, id: string, expected: string, next: string, expiry = '-'): Promise<boolean> {
    return this.script<unknown>(operation, POINTER_SWAP, [this.keys.pointer(id)], [expected, next, expiry]).then((n) => Number(n) === 1);
  }

  /** The record of `id` under `hash`, or `null` (none there, or another key's). */
  async recordAt(operation: string, id: string, hash: string): Promise<ApiKey | null> {
    const record = decodeRecord(operation, await this.read(operation, ['GET', this.keys.record(hash)]));
    return record && record.id === id && record.keyHash === hash ? record : null;
  }

  /** The record `pointer` leads to: under the move's target first, else its source. */
  async recordVia(operation: string, id: string, pointer: RedisPointer): Promise<FoundRecord | null> {
    const hashes = hashesOf(pointer);
    const records = await Promise.all(hashes.map((hash) => this.recordAt(operation, id, hash)));
    const at = records.findIndex((record) => record !== null);
    return at < 0 ? null : { record: records[at]!, hash: hashes[at]! };
  }

  /** Whether a pointer with no record is a create's still within the grace period. */
  inFlight(pointer: RedisPointer): boolean {
    return pointer.state === 'pending' && this.now() - pointer.since < this.graceMs;
  }

  /** The index entries a record has: its owner's set, the index across owners, its issuer's set. */
  entriesOf(record: Pick<ApiKey, 'id' | 'ownerId' | 'createdAt' | 'issuedById'>): IndexEntry[] {
    const entry = ownerEntry(record.createdAt, record.id);
    const entries: IndexEntry[] = [
      { key: this.keys.owner(record.ownerId), kind: 'z', member: entry },
      { key: this.keys.all(), kind: 'z', member: entry },
    ];
    if (record.issuedById != null) entries.push({ key: this.keys.issuer(record.issuedById), kind: 's', member: record.id });
    return entries;
  }

  /** Adds (pending), settles or removes each entry, in parallel: each is its own slot. */
  async entries(operation: string, entries: IndexEntry[], op: 'add' | 'settle' | 'remove'): Promise<void> {
    const mark = op === 'add' ? [String(this.now())] : [];
    await Promise.all(
      entries.map((e) => this.script(operation, INDEX_ENTRY, [e.key, this.keys.marks(e.key)], [e.kind, e.member, op, ...mark])),
    );
  }

  /** Files `record` in the purge index as it is stored (version-ordered); `expiring` only when Redis does not expire it. */
  async fileLifecycle(operation: string, record: ApiKey, redisExpires: boolean): Promise<void> {
    const version = String(record.version);
    const expires = record.expiresAt && !redisExpires ? String(record.expiresAt.getTime()) : '';
    const revoked = record.revokedAt ? String(record.revokedAt.getTime()) : '';
    await Promise.all([
      this.script(operation, LIFECYCLE_SYNC, [this.keys.expiring(), `${this.keys.expiring()}:v`], [record.id, version, expires]),
      this.script(operation, LIFECYCLE_SYNC, [this.keys.revoked(), `${this.keys.revoked()}:v`], [record.id, version, revoked]),
    ]);
  }

  async dropLifecycle(operation: string, id: string): Promise<void> {
    await Promise.all(
      [this.keys.expiring(), this.keys.revoked()].map((key) => this.script(operation, LIFECYCLE_SYNC, [key, `${key}:v`], [id, 'drop', ''])),
    );
  }

  /** When Redis should drop the record: '' for never. */
  expireAt(expiresAt: Date | null): string {
    if (!this.ctx.options.expireRecords || !expiresAt) return '';
    return String(expiresAt.getTime() + this.ctx.options.expiredRetentionMs);
  }

  /** The pointer outlives its record by the grace period, so a record is never found by hash and not by id. */
  pointerExpireAt(recordExpireAt: string): string {
    return recordExpireAt === '' ? '' : String(Number(recordExpireAt) + this.graceMs);
  }

  /** What a removed record leaves to clean after its commit: entries, purge index, pointer (compare-and-delete). */
  async forget(operation: string, record: ApiKey, pointerValue: string): Promise<void> {
    await Promise.all([
      this.entries(operation, this.entriesOf(record), 'remove'),
      this.dropLifecycle(operation, record.id),
      this.swapPointer(operation, record.id, pointerValue, ''),
    ]);
  }
}
