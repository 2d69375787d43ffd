import { ownedApiKeyView, type ApiKey, type ApiKeyView } from '../api-key.interface.js';
import type { LookupAnswer } from '../verification/lookup-callbacks.js';
import { readonlyDate } from './redis-record.readonly-date.js';

/**
 * A record decoded by a verification, with the bytes it was decoded from. Shared by every
 * verification that reads the same bytes, so both objects are frozen; the view's dates
 * are read-only copies of its own (`ReadonlyDate`: freezing cannot stop `setTime`), so
 * a consumer changing `request.apiKey` never changes what the next request sees or what
 * its verdict reads.
 *
 * @internal
 */
export interface MemoizedRecord {
  /** The reply of the `GET`, exactly as Redis answered it. */
  readonly stored: string;
  /** The record, frozen: judged per request, never handed out. */
  readonly record: Readonly<ApiKey>;
  /** What the request gets (`request.apiKey`), frozen, without the hash. */
  readonly view: Readonly<ApiKeyView>;
}

/**
 * The last decoded records of `RedisBackend`'s verification path, one per key hash, so a
 * verification that reads the very bytes it decoded before skips the decode. Every
 * verification still reads Redis: a write changes the bytes, and changed bytes are a
 * miss that replaces the hash's entry, so nothing here can be stale. An entry is only
 * made from a record whose `keyHash` the decoder matched with the hash looked up, so an
 * entry answers only for its own hash. Bounded: past `capacity` hashes, the oldest
 * entry (by first insertion) goes.
 *
 * @internal Not exported from the package.
 */
export class RecordMemo {
  private readonly entries = new Map<string, MemoizedRecord>();

  /** @param capacity most hashes held, at least 1. */
  constructor(readonly capacity: number) {}

  /** Hashes held. */
  get size(): number {
    return this.entries.size;
  }

  /** The entry of `keyHash` when it was decoded from exactly `stored`. */
  get(keyHash: string, stored: string): MemoizedRecord | undefined {
    const entry = this.entries.get(keyHash);
    // One string comparison: equal bytes decode to an equal record.
    return entry !== undefined && entry.stored === stored ? entry : undefined;
  }

  /**
   * Files a record freshly decoded from `stored` under `keyHash` (the decoder has
   * matched its `keyHash`), freezing it: the caller must hold no other reference it
   * mutates. Replaces an older entry of the hash in place.
   */
  remember(keyHash: string, stored: string, record: ApiKey): MemoizedRecord {
    const entries = this.entries;
    if (entries.size >= this.capacity && !entries.has(keyHash)) {
      // The oldest insertion: a Map iterates in insertion order.
      entries.delete(entries.keys().next().value!);
    }
    const entry: MemoizedRecord = Object.freeze({ stored, record: freezeRecord(record), view: sharedView(record) });
    entries.set(keyHash, entry);
    return entry;
  }

  /**
   * Answers a lookup of `keyHash` from Redis's `reply`: the memoized record when the
   * bytes are the same, else `decode(reply, keyHash)` (which returns `null` for nil and
   * for a record of another hash, and throws for bytes it cannot read), filed when it
   * is a record.
   */
  answer(keyHash: string, reply: unknown, decode: (reply: unknown, keyHash: string) => ApiKey | null, onRecord: LookupAnswer): void {
    if (typeof reply !== 'string') {
      // Nil (deleted, or never there), or a client that maps replies to buffers.
      if (reply === null || reply === undefined) this.entries.delete(keyHash);
      onRecord(decode(reply, keyHash));
      return;
    }
    const entry = this.get(keyHash, reply) ?? this.decoded(keyHash, reply, decode(reply, keyHash));
    if (entry === null) onRecord(null);
    else onRecord(entry.record, entry.view);
  }

  private decoded(keyHash: string, stored: string, record: ApiKey | null): MemoizedRecord | null {
    if (record === null) {
      // A record of another hash: the entry of this one is of no use any more.
      this.entries.delete(keyHash);
      return null;
    }
    return this.remember(keyHash, stored, record);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The view of a frozen record, with read-only dates of its own, frozen. */
function sharedView(record: Readonly<ApiKey>): Readonly<ApiKeyView> {
  const view = ownedApiKeyView(record as ApiKey);
  view.createdAt = readonlyDate(record.createdAt)!;
  view.updatedAt = readonlyDate(record.updatedAt)!;
  view.expiresAt = readonlyDate(record.expiresAt);
  view.revokedAt = readonlyDate(record.revokedAt);
  view.lastUsedAt = readonlyDate(record.lastUsedAt);
  view.disabledAt = readonlyDate(record.disabledAt);
  return Object.freeze(view);
}

/** Freezes a decoded record and what it holds (scopes, metadata, policy; not its dates). */
function freezeRecord(record: ApiKey): Readonly<ApiKey> {
  Object.freeze(record.scopes);
  deepFreeze(record.metadata);
  deepFreeze(record.policy);
  return Object.freeze(record);
}

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
}
