import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { invalidationTag, L1Cache } from 'nestjs-api-auth/backend';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';

/** A clock the test moves by hand. */
function manualClock(start = 1_700_000_000_000) {
  const clock = { now: start, read: () => clock.now };
  return clock;
}

/** A distinct, well-formed 64-hex-character hash per integer, without hashing. */
const hashOf = (i: number) => i.toString(16).padStart(64, '0');

/** `count` hashes with pairwise distinct tags, so that dropping one's tag drops no other. */
function hashesWithDistinctTags(count: number, from = 0): string[] {
  const tags = new Set<number>();
  const hashes: string[] = [];
  for (let i = from; hashes.length < count; i++) {
    const tag = invalidationTag(hashOf(i));
    if (tags.has(tag)) continue;
    tags.add(tag);
    hashes.push(hashOf(i));
  }
  return hashes;
}

/** `count` hashes that all have `tag` (about one integer in 4,096 qualifies). */
function hashesUnderTag(tag: number, count: number, from = 1_000_000): string[] {
  const hashes: string[] = [];
  for (let i = from; hashes.length < count; i++) if (invalidationTag(hashOf(i)) === tag) hashes.push(hashOf(i));
  return hashes;
}

/** Heap in use after two full collections. */
function settledHeap(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('L1Cache', () => {
  it('answers undefined for an unseen hash, the entry for a held key and null for a known-missing hash', () => {
    const cache = new L1Cache();
    const record = makeApiKeyRecord();
    expect(cache.get(record.keyHash)).toBeUndefined();
    const entry = cache.set(record);
    expect(cache.get(record.keyHash)).toBe(entry);
    expect(entry.record).toEqual(record);
    cache.setMissing(hashOf(1));
    expect(cache.get(hashOf(1))).toBeNull();
    expect(cache.size).toBe(2);
  });

  it('holds a frozen copy and a frozen view without the hash', () => {
    const cache = new L1Cache();
    const record = makeApiKeyRecord();
    const entry = cache.set(record);
    record.scopes.push('added-later');
    (record.metadata as { plan: string }).plan = 'changed-later';
    expect(entry.record.scopes).toEqual(['read', 'write:things']);
    expect(entry.view.metadata.plan).toBe('pro');
    expect('keyHash' in entry.view).toBe(false);
    expect(entry.view.id).toBe(record.id);
    for (const frozen of [entry, entry.record, entry.view, entry.view.scopes, entry.view.metadata, entry.view.metadata.nested]) {
      expect(Object.isFrozen(frozen)).toBe(true);
    }
    expect(() => (entry.view.scopes as string[]).push('admin')).toThrow(TypeError);
  });

  it("shares read-only dates between the view and the record the verdict reads, so a consumer cannot move a cached key's expiry", () => {
    const cache = new L1Cache();
    const record = { ...makeApiKeyRecord(), expiresAt: new Date('2030-01-01T00:00:00.000Z') };
    const entry = cache.set(record);
    expect(entry.view.expiresAt).toBe(entry.record.expiresAt);
    expect(entry.view.expiresAt).toBeInstanceOf(Date);
    expect(() => entry.view.expiresAt!.setTime(Date.parse('2099-01-01'))).toThrow(TypeError);
    expect(() => entry.view.createdAt.setFullYear(2099)).toThrow(TypeError);
    expect(entry.record.expiresAt!.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(JSON.stringify(entry.view.expiresAt)).toBe('"2030-01-01T00:00:00.000Z"');
    expect(entry.view.expiresAt).toEqual(new Date('2030-01-01T00:00:00.000Z'));
  });

  it('evicts the least recently used known key past maxEntries', () => {
    const cache = new L1Cache({ maxEntries: 3 });
    const [a, b, c, d] = Array.from({ length: 4 }, () => makeApiKeyRecord());
    cache.set(a!);
    cache.set(b!);
    cache.set(c!);
    expect(cache.get(a!.keyHash)).toBeDefined(); // a is now the most recent; b the least
    cache.set(d!);
    expect(cache.knownSize).toBe(3);
    expect(cache.get(b!.keyHash)).toBeUndefined();
    for (const kept of [a!, c!, d!]) expect(cache.get(kept.keyHash)?.record.id).toBe(kept.id);
    // The id index forgets evicted keys too.
    expect(cache.deleteId(b!.id)).toBe(false);
  });

  it('bounds unknown hashes separately, so a garbage flood never evicts known keys', () => {
    const cache = new L1Cache({ maxEntries: 10, maxNegativeEntries: 100 });
    const known = Array.from({ length: 10 }, () => makeApiKeyRecord());
    for (const record of known) cache.set(record);
    for (let i = 0; i < 10_000; i++) cache.setMissing(hashOf(i));
    expect(cache.unknownSize).toBe(100);
    expect(cache.knownSize).toBe(10);
    for (const record of known) expect(cache.get(record.keyHash)?.record.id).toBe(record.id);
    // The most recent garbage is what is remembered.
    expect(cache.get(hashOf(9_999))).toBeNull();
    expect(cache.get(hashOf(0))).toBeUndefined();
  });

  it('stays within its bound for twenty times as many distinct unknown keys, in entries and in heap (tag index included)', () => {
    const bound = 10_000;
    const cache = new L1Cache({ maxNegativeEntries: bound });
    const heap = settledHeap;
    const before = heap();
    for (let i = 0; i < bound; i++) cache.setMissing(hashOf(i));
    const full = heap();
    // Twenty bounds' worth shows the bound holding; more would only make the test slow
    // enough for a busy machine to time it out.
    for (let i = bound; i < 20 * bound; i++) cache.setMissing(hashOf(i));
    const after = heap();

    expect(cache.size).toBe(bound);
    const perBound = full - before;
    // One bound's worth of entries costs something measurable; 190,000 more cost nothing
    // beyond noise (allowed: half a bound's worth, or 2 MB, whichever is larger).
    expect(perBound).toBeGreaterThan(bound * 50);
    expect(after - full).toBeLessThan(Math.max(perBound / 2, 2 * 1024 * 1024));
  });

  it('drops a known key at its expiresAt even when the TTL runs longer', () => {
    const clock = manualClock();
    const cache = new L1Cache({ ttl: 60_000, now: clock.read });
    const record = makeApiKeyRecord({ expiresAt: new Date(clock.now + 3_000) });
    cache.set(record);
    clock.now += 2_999;
    expect(cache.get(record.keyHash)).toBeDefined();
    clock.now += 1;
    expect(cache.get(record.keyHash)).toBeUndefined();
    expect(cache.knownSize).toBe(0);
    expect(cache.deleteId(record.id)).toBe(false);
  });

  it('drops a known key after its TTL when the key expires later or never', () => {
    const clock = manualClock();
    const cache = new L1Cache({ ttl: 1_000, now: clock.read });
    const later = makeApiKeyRecord({ expiresAt: new Date(clock.now + 60_000) });
    const never = makeApiKeyRecord();
    cache.set(later);
    cache.set(never);
    clock.now += 999;
    expect(cache.get(later.keyHash)).toBeDefined();
    expect(cache.get(never.keyHash)).toBeDefined();
    clock.now += 1;
    expect(cache.get(later.keyHash)).toBeUndefined();
    expect(cache.get(never.keyHash)).toBeUndefined();
  });

  it('caches a key already past its expiry as such, for the TTL', () => {
    const clock = manualClock();
    const cache = new L1Cache({ ttl: 1_000, now: clock.read });
    const expired = makeApiKeyRecord({ expiresAt: new Date(clock.now - 1) });
    cache.set(expired);
    clock.now += 999;
    expect(cache.get(expired.keyHash)?.record.expiresAt).toEqual(expired.expiresAt);
    clock.now += 1;
    expect(cache.get(expired.keyHash)).toBeUndefined();
  });

  it('forgets unknown hashes after the shorter negativeTtl', () => {
    const clock = manualClock();
    const cache = new L1Cache({ ttl: 10_000, negativeTtl: 2_000, now: clock.read });
    const record = makeApiKeyRecord();
    cache.set(record);
    cache.setMissing(hashOf(7));
    clock.now += 1_999;
    expect(cache.get(hashOf(7))).toBeNull();
    clock.now += 1;
    expect(cache.get(hashOf(7))).toBeUndefined();
    expect(cache.unknownSize).toBe(0);
    expect(cache.get(record.keyHash)).toBeDefined();
  });

  it('drops entries by hash, by id, or all at once', () => {
    const cache = new L1Cache();
    const [a, b] = [makeApiKeyRecord(), makeApiKeyRecord()];
    cache.set(a);
    cache.set(b);
    cache.setMissing(hashOf(3));
    expect(cache.deleteId(a.id)).toBe(true);
    expect(cache.get(a.keyHash)).toBeUndefined();
    expect(cache.deleteHash(hashOf(3))).toBe(true);
    expect(cache.get(hashOf(3))).toBeUndefined();
    expect(cache.deleteHash(hashOf(3))).toBe(false);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get(b.keyHash)).toBeUndefined();
    expect(cache.deleteId(b.id)).toBe(false);
  });

  it('replaces a negative entry with the key once the key exists, and the reverse', () => {
    const cache = new L1Cache();
    const record = makeApiKeyRecord();
    cache.setMissing(record.keyHash);
    cache.set(record);
    expect(cache.get(record.keyHash)?.record.id).toBe(record.id);
    expect(cache.size).toBe(1);
    cache.setMissing(record.keyHash);
    expect(cache.get(record.keyHash)).toBeNull();
    expect(cache.deleteId(record.id)).toBe(false);
  });

  it('rejects bounds and TTLs that are not positive integers, naming the option', () => {
    expect(() => new L1Cache({ maxEntries: 0 })).toThrow(/"maxEntries"/);
    expect(() => new L1Cache({ ttl: 1.5 })).toThrow(/"ttl"/);
    expect(() => new L1Cache({ negativeTtl: -1 })).toThrow(/"negativeTtl"/);
    expect(() => new L1Cache({ maxNegativeEntries: Number.NaN })).toThrow(/"maxNegativeEntries"/);
  });

  describe('indexes: an invalidation names ids and tags, never hashes', () => {
    it('drops a known key by id, and never an unknown hash (unknown hashes have no id)', () => {
      const cache = new L1Cache();
      const [a, b] = [makeApiKeyRecord(), makeApiKeyRecord()];
      cache.set(a);
      cache.set(b);
      cache.setMissing(hashOf(1));
      expect(cache.deleteId(a.id)).toBe(true);
      expect(cache.get(a.keyHash)).toBeUndefined();
      expect(cache.get(b.keyHash)?.record.id).toBe(b.id);
      expect(cache.get(hashOf(1))).toBeNull();
      expect(cache.deleteId(a.id)).toBe(false);
      expect(cache.deleteId('never-cached')).toBe(false);
    });

    it('drops every entry under a tag, known and unknown, and nothing else', () => {
      const cache = new L1Cache();
      const [hashA, hashB, hashC] = hashesWithDistinctTags(3);
      const tag = invalidationTag(hashA!);
      const [sameTagKnown, sameTagUnknown] = hashesUnderTag(tag, 2);
      const known = makeApiKeyRecord({ keyHash: sameTagKnown! });
      const other = makeApiKeyRecord({ keyHash: hashB! });
      cache.set(known);
      cache.setMissing(sameTagUnknown!);
      cache.setMissing(hashA!);
      cache.set(other);
      cache.setMissing(hashC!);

      expect(cache.deleteTag(tag)).toBe(3);
      for (const dropped of [sameTagKnown!, sameTagUnknown!, hashA!]) expect(cache.get(dropped)).toBeUndefined();
      expect(cache.get(hashB!)?.record.id).toBe(other.id);
      expect(cache.get(hashC!)).toBeNull();
      // The id index forgot the key dropped by tag, and the tag is gone.
      expect(cache.deleteId(known.id)).toBe(false);
      expect(cache.deleteTag(tag)).toBe(0);
    });

    it('takes a key out of both indexes when the LRU evicts it', () => {
      const cache = new L1Cache({ maxEntries: 2, maxNegativeEntries: 2 });
      const [k1, k2, k3, u1, u2, u3] = hashesWithDistinctTags(6);
      const [a, b, c] = [k1!, k2!, k3!].map((keyHash) => makeApiKeyRecord({ keyHash }));
      for (const record of [a!, b!, c!]) cache.set(record); // evicts a
      for (const hash of [u1!, u2!, u3!]) cache.setMissing(hash); // evicts u1
      expect(cache.size).toBe(4);

      expect(cache.deleteId(a!.id)).toBe(false);
      expect(cache.deleteTag(invalidationTag(k1!))).toBe(0);
      expect(cache.deleteTag(invalidationTag(u1!))).toBe(0);
      // The survivors are still indexed, so the zeros above mean "forgotten", not "never indexed".
      expect(cache.deleteId(b!.id)).toBe(true);
      expect(cache.deleteTag(invalidationTag(k3!))).toBe(1);
      expect(cache.deleteTag(invalidationTag(u2!))).toBe(1);
      expect(cache.deleteTag(invalidationTag(u3!))).toBe(1);
      expect(cache.size).toBe(0);
    });

    it('takes an entry out of both indexes when it expires', () => {
      const clock = manualClock();
      const cache = new L1Cache({ ttl: 1_000, negativeTtl: 500, now: clock.read });
      const [k, u] = hashesWithDistinctTags(2);
      const record = makeApiKeyRecord({ keyHash: k! });
      cache.set(record);
      cache.setMissing(u!);
      clock.now += 1_000;
      expect(cache.get(k!)).toBeUndefined();
      expect(cache.get(u!)).toBeUndefined();
      expect(cache.deleteId(record.id)).toBe(false);
      expect(cache.deleteTag(invalidationTag(k!))).toBe(0);
      expect(cache.deleteTag(invalidationTag(u!))).toBe(0);
    });

    it('indexes a hash once as it turns from unknown to known and back, and forgets an id that moved to another hash', () => {
      const cache = new L1Cache();
      const [h1, h2] = hashesWithDistinctTags(2);
      const record = makeApiKeyRecord({ keyHash: h1! });
      for (let i = 0; i < 3; i++) {
        cache.setMissing(h1!);
        cache.set(record);
      }
      expect(cache.deleteTag(invalidationTag(h1!))).toBe(1);
      expect(cache.size).toBe(0);

      cache.set(record);
      cache.set({ ...record, keyHash: h2! }); // the same id, stored under another hash
      expect(cache.get(h1!)).toBeUndefined();
      expect(cache.deleteTag(invalidationTag(h1!))).toBe(0);
      expect(cache.deleteId(record.id)).toBe(true);
      expect(cache.get(h2!)).toBeUndefined();
      expect(cache.deleteTag(invalidationTag(h2!))).toBe(0);
    });

    it('stays within its bound for 40,000 distinct known keys, indexes included, in entries and in heap', () => {
      const bound = 1_000;
      const cache = new L1Cache({ maxEntries: bound });
      const records = (n: number) => Array.from({ length: n }, () => makeApiKeyRecord());
      const before = settledHeap();
      for (const record of records(bound)) cache.set(record);
      const full = settledHeap();
      for (let i = 0; i < 39; i++) for (const record of records(bound)) cache.set(record);
      const after = settledHeap();

      expect(cache.knownSize).toBe(bound);
      const perBound = full - before;
      // A leaking index would keep 39,000 ids and hashes alive (several MB); allowed
      // here: half a bound's worth, or 2 MB, whichever is larger.
      expect(perBound).toBeGreaterThan(bound * 500);
      expect(after - full).toBeLessThan(Math.max(perBound / 2, 2 * 1024 * 1024));
    });
  });
});
