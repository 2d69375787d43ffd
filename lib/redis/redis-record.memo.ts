import type { ApiKey, ApiKeyView } from '../api-key.interface.js';
import type { LookupAnswer } from '../verification/lookup-callbacks.js';
import { shareApiKey } from '../internal/shared-api-key.js';

/**
 * A record decoded by a verification, with the bytes it was decoded from. Shared by every
 * verification that reads the same bytes, so both objects are frozen, and the dates they
 * share are read-only (`ReadonlyDate`: freezing cannot stop `setTime`), so a consumer
 * changing `request.apiKey` never changes what the next request sees or what its
 * verdict reads.
 *
 * @internal
 */
export interface MemoizedRecord {
  /** The hash the record was looked up by, and the decoder matched. */
  readonly keyHash: string;
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
  /**
   * By a number made from the first characters of the hash (`slotOf`), not by the hash:
   * the hash is a new string on every request, and a `Map` keyed by it hashes all of its
   * characters each time. Two hashes on one slot replace each other's entry; an entry
   * answers only after the whole hash and the whole reply compared equal.
   */
  private readonly entries = new Map<number, MemoizedRecord>();

  /** @param capacity most hashes held, at least 1. */
  constructor(readonly capacity: number) {}

  /** Hashes held. */
  get size(): number {
    return this.entries.size;
  }

  /** The entry of `keyHash` when it was decoded from exactly `stored`. */
  get(keyHash: string, stored: string): MemoizedRecord | undefined {
    const entry = this.entries.get(slotOf(keyHash));
    // Equal bytes decode to an equal record; the hash, so that a record answers only for its own.
    return entry !== undefined && entry.stored === stored && entry.keyHash === keyHash ? entry : undefined;
  }

  /**
   * Files a record freshly decoded from `stored` under `keyHash` (the decoder has
   * matched its `keyHash`), freezing it: the caller must hold no other reference it
   * mutates. Replaces an older entry of the hash in place.
   */
  remember(keyHash: string, stored: string, record: ApiKey): MemoizedRecord {
    const entries = this.entries;
    const slot = slotOf(keyHash);
    if (entries.size >= this.capacity && !entries.has(slot)) {
      // The oldest insertion: a Map iterates in insertion order.
      entries.delete(entries.keys().next().value!);
    }
    const shared = shareApiKey(record);
    // An internal object, not frozen: nothing outside this class holds it.
    const entry: MemoizedRecord = { keyHash, stored, record: shared.record, view: shared.view };
    entries.set(slot, entry);
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
      if (reply === null || reply === undefined) this.forget(keyHash);
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
      this.forget(keyHash);
      return null;
    }
    return this.remember(keyHash, stored, record);
  }

  private forget(keyHash: string): void {
    const slot = slotOf(keyHash);
    if (this.entries.get(slot)?.keyHash === keyHash) this.entries.delete(slot);
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * A small integer (a Smi, which a `Map` hashes cheaply) from the first 7 characters of a
 * key hash read as hex digits, 28 bits: a SHA-256 or HMAC in hex, so slots spread evenly.
 * Any other text still gets a slot, only a less even one.
 */
function slotOf(keyHash: string): number {
  let slot = 0;
  for (let i = 0; i < 7; i++) {
    const c = keyHash.charCodeAt(i);
    slot = slot * 16 + ((c <= 57 ? c - 48 : c - 87) & 15);
  }
  return slot;
}
