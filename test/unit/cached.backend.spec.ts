import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CachedBackend,
  LocalInvalidationBus,
  MemoryBackend,
  withL1Cache,
  type ApiKey,
  type ApiKeyBackend,
  type ApiKeyInvalidation,
  type ApiKeyInvalidationBus,
} from 'nestjs-api-auth';
import { invalidationTag } from 'nestjs-api-auth/backend';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { requiredMethodsOf } from '../fixtures/required-methods.js';

/** A MemoryBackend that counts lookups by hash and can hold them until released. */
class CountingBackend extends MemoryBackend {
  reads = 0;
  gate: Promise<void> | null = null;

  override async getByHash(keyHash: string): Promise<ApiKey | null> {
    this.reads++;
    // Reads the store first, then waits: a held read returns what was stored when it began.
    const gate = this.gate;
    const record = await super.getByHash(keyHash);
    if (gate) await gate;
    return record;
  }
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const unknownHash = (n: number) => n.toString(16).padStart(64, 'f');

/** `count` records whose hashes have pairwise distinct tags: dropping one's tag drops no other. */
function recordsWithDistinctTags(count: number): ApiKey[] {
  const tags = new Set<number>();
  const records: ApiKey[] = [];
  while (records.length < count) {
    const record = makeApiKeyRecord();
    const tag = invalidationTag(record.keyHash);
    if (tags.has(tag)) continue;
    tags.add(tag);
    records.push(record);
  }
  return records;
}

afterEach(() => vi.restoreAllMocks());

describe('CachedBackend', () => {
  it('serves a known key from memory after the first read, as a fresh copy each time', async () => {
    const primary = new CountingBackend();
    const backend = withL1Cache(primary);
    const record = await backend.create(makeApiKeyRecord());
    const first = await backend.getByHash(record.keyHash);
    const second = await backend.getByHash(record.keyHash);
    expect(primary.reads).toBe(1);
    expect(second).toEqual(record);
    expect(second).not.toBe(first);
    second!.scopes.push('mutated');
    expect((await backend.getByHash(record.keyHash))!.scopes).toEqual(record.scopes);
    expect(backend.peekByHash(record.keyHash)?.view.id).toBe(record.id);
  });

  it('answers 50 concurrent misses for one hash with a single primary read', async () => {
    const primary = new CountingBackend();
    const backend = new CachedBackend(primary);
    const record = await primary.create(makeApiKeyRecord());
    const gate = deferred();
    primary.gate = gate.promise;
    const pending = Array.from({ length: 50 }, () => backend.getByHash(record.keyHash));
    gate.resolve();
    const results = await Promise.all(pending);
    expect(primary.reads).toBe(1);
    for (const result of results) expect(result).toEqual(record);
    expect(new Set(results).size).toBe(50); // each caller got its own copy
  });

  it('remembers unknown hashes for negativeTtl, then asks again', async () => {
    let now = 1_000_000;
    const primary = new CountingBackend();
    const backend = new CachedBackend(primary, { negativeTtl: 500, now: () => now });
    for (let i = 0; i < 20; i++) expect(await backend.getByHash(unknownHash(1))).toBeNull();
    expect(primary.reads).toBe(1);
    expect(backend.peekByHash(unknownHash(1))).toBeNull();
    now += 500;
    expect(backend.peekByHash(unknownHash(1))).toBeUndefined();
    await backend.getByHash(unknownHash(1));
    expect(primary.reads).toBe(2);
  });

  it('never caches a failure: the next lookup asks the primary again', async () => {
    const primary = new CountingBackend();
    const backend = new CachedBackend(primary);
    const record = await primary.create(makeApiKeyRecord());
    const spy = vi.spyOn(primary, 'getByHash').mockRejectedValueOnce(new Error('connection refused'));
    await expect(backend.getByHash(record.keyHash)).rejects.toThrow('connection refused');
    expect(backend.peekByHash(record.keyHash)).toBeUndefined();
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it('does not file a record under a hash that is not its own', async () => {
    const primary = new MemoryBackend();
    const backend = new CachedBackend(primary);
    const other = await primary.create(makeApiKeyRecord());
    vi.spyOn(primary, 'getByHash').mockResolvedValue(other);
    const asked = unknownHash(2);
    expect((await backend.getByHash(asked))?.id).toBe(other.id);
    expect(backend.peekByHash(asked)).toBeUndefined();
    expect(backend.peekByHash(other.keyHash)).toBeUndefined();
  });

  it('drops its own entry on revoke, update and delete, and the negative entry on create', async () => {
    const backend = new CachedBackend(new MemoryBackend());
    const record = makeApiKeyRecord();
    expect(await backend.getByHash(record.keyHash)).toBeNull();
    await backend.create(record);
    expect((await backend.getByHash(record.keyHash))?.id).toBe(record.id);

    const revokedAt = new Date();
    await backend.update(record.id, { revokedAt, updatedAt: revokedAt });
    expect(backend.peekByHash(record.keyHash)).toBeUndefined();
    expect((await backend.getByHash(record.keyHash))?.revokedAt).toEqual(revokedAt);

    await backend.update(record.id, { name: 'renamed', revokedAt, updatedAt: new Date() });
    expect((await backend.getByHash(record.keyHash))?.name).toBe('renamed');

    await backend.delete(record.id);
    expect(await backend.getByHash(record.keyHash)).toBeNull();
  });

  it('does not cache a read that an invalidation overtook', async () => {
    const primary = new CountingBackend();
    const backend = new CachedBackend(primary);
    const record = await backend.create(makeApiKeyRecord());
    const gate = deferred();
    primary.gate = gate.promise;
    const slowRead = backend.getByHash(record.keyHash); // reads the unrevoked record...
    await new Promise((r) => setImmediate(r));
    primary.gate = null;
    const revokedAt = new Date();
    await backend.update(record.id, { revokedAt, updatedAt: new Date() }); // ...which is revoked before it returns
    gate.resolve();
    expect((await slowRead)?.revokedAt).toBeNull();
    // The stale answer went to its caller only; the cache asks again.
    expect(backend.peekByHash(record.keyHash)).toBeUndefined();
    expect((await backend.getByHash(record.keyHash))?.revokedAt).toEqual(revokedAt);
  });

  it('counts the ttl of an entry from when its read started, so a read that spans a lost invalidation ends within ttl of it', async () => {
    let now = 1_000_000;
    const primary = new CountingBackend();
    const backend = new CachedBackend(primary, { ttl: 1_000, now: () => now });
    const record = await primary.create(makeApiKeyRecord());
    const gate = deferred();
    primary.gate = gate.promise;
    const slowRead = backend.getByHash(record.keyHash); // starts at t, reads the record...
    await new Promise((r) => setImmediate(r));
    now += 600; // ...which another instance changes now, its message lost; the read ends later.
    gate.resolve();
    await slowRead;
    primary.gate = null;
    now += 399; // t + 999: still served from memory
    expect(backend.peekByHash(record.keyHash)).toBeDefined();
    now += 1; // t + 1000: gone, not at t + 1600
    expect(backend.peekByHash(record.keyHash)).toBeUndefined();
  });

  it('starts a fresh read for callers arriving after an invalidation, instead of joining a stale one', async () => {
    const primary = new CountingBackend();
    const backend = new CachedBackend(primary);
    const record = await backend.create(makeApiKeyRecord());
    const gate = deferred();
    primary.gate = gate.promise;
    const early = backend.getByHash(record.keyHash);
    await backend.invalidate({ ids: [record.id] });
    const late = backend.getByHash(record.keyHash);
    gate.resolve();
    await Promise.all([early, late]);
    expect(primary.reads).toBe(2);
  });

  it('passes reads by id, listings, counts and usage writes to the primary without invalidating', async () => {
    const primary = new CountingBackend();
    const backend = new CachedBackend(primary);
    const record = await backend.create(makeApiKeyRecord());
    await backend.getByHash(record.keyHash);
    expect(await backend.recordUsage(record.id, new Date(), new Date())).toBe(true);
    expect(backend.peekByHash(record.keyHash)).toBeDefined();
    expect((await backend.getById(record.id))?.lastUsedAt).toBeInstanceOf(Date);
    expect(await backend.countByOwner!(record.ownerId)).toBe(1);
    const listed: string[] = [];
    for await (const r of backend.listByOwner(record.ownerId)) listed.push(r.id);
    expect(listed).toEqual([record.id]);
    const bare: ApiKeyBackend = { ...requiredMethodsOf(primary) };
    expect(new CachedBackend(bare).countByOwner).toBeUndefined();
  });
});

describe('CachedBackend over an invalidation bus', () => {
  it('publishes ids, and the tag of a new key, never a hash or a plaintext key, and ignores its own echo', async () => {
    const bus = new LocalInvalidationBus();
    const sent: ApiKeyInvalidation[] = [];
    bus.subscribe((m) => sent.push(m));
    const backend = new CachedBackend(new MemoryBackend(), { bus });
    const record = await backend.create(makeApiKeyRecord());
    await backend.getByHash(record.keyHash);
    await backend.update(record.id, { name: 'x', updatedAt: new Date() });
    await backend.delete(record.id);
    expect(sent.map((m) => [m.ids, m.tags])).toEqual([
      [[record.id], [invalidationTag(record.keyHash)]],
      [[record.id], []],
      [[record.id], []],
    ]);
    expect(JSON.stringify(sent)).not.toContain(record.keyHash);
    expect(new Set(sent.map((m) => m.origin)).size).toBe(1);
    expect(sent[0]!.origin).toEqual(expect.any(String));
  });

  it('drops entries named by another instance, by id, by tag (known and unknown) or all', async () => {
    const bus = new LocalInvalidationBus();
    const primary = new MemoryBackend();
    const backend = new CachedBackend(primary, { bus });
    const [a, b, c, missing] = recordsWithDistinctTags(4);
    for (const r of [a!, b!, c!]) await primary.create(r);
    for (const r of [a!, b!, c!, missing!]) await backend.getByHash(r.keyHash);
    expect(backend.peekByHash(missing!.keyHash)).toBeNull();

    await bus.publish({ ids: [a!.id], origin: 'other' });
    expect(backend.peekByHash(a!.keyHash)).toBeUndefined();
    expect(backend.peekByHash(b!.keyHash)).toBeDefined();

    await bus.publish({ tags: [invalidationTag(b!.keyHash), invalidationTag(missing!.keyHash)], origin: 'other' });
    expect(backend.peekByHash(b!.keyHash)).toBeUndefined();
    expect(backend.peekByHash(missing!.keyHash)).toBeUndefined();
    expect(backend.peekByHash(c!.keyHash)).toBeDefined();

    await bus.publish({ all: true, origin: 'other' });
    expect(backend.cache.size).toBe(0);
  });

  it('never drops an unknown hash by id: a delete elsewhere leaves negative entries alone', async () => {
    const bus = new LocalInvalidationBus();
    const primary = new MemoryBackend();
    const one = new CachedBackend(primary, { bus });
    const two = new CachedBackend(primary, { bus, negativeTtl: 600_000 });
    const [gone, neverStored] = recordsWithDistinctTags(2);
    await one.create(gone!);
    expect(await two.getByHash(neverStored!.keyHash)).toBeNull();
    await one.delete(gone!.id);
    expect(two.peekByHash(neverStored!.keyHash)).toBeNull();
  });

  it('lets another instance accept a new key at once, even though it remembered the hash as unknown', async () => {
    const bus = new LocalInvalidationBus();
    const primary = new CountingBackend();
    const one = new CachedBackend(primary, { bus });
    const two = new CachedBackend(primary, { bus, negativeTtl: 600_000 });
    const record = makeApiKeyRecord(); // e.g. a key imported while its old system still served it
    expect(await two.getByHash(record.keyHash)).toBeNull();
    expect(two.peekByHash(record.keyHash)).toBeNull();
    await one.create(record);
    expect(two.peekByHash(record.keyHash)).toBeUndefined();
    expect((await two.getByHash(record.keyHash))?.id).toBe(record.id);
  });

  it('invalidate(): by exact hash here, by tag elsewhere, and refuses a malformed argument', async () => {
    const bus = new LocalInvalidationBus();
    const sent: ApiKeyInvalidation[] = [];
    bus.subscribe((m) => sent.push(m));
    const primary = new MemoryBackend();
    const one = new CachedBackend(primary, { bus });
    const two = new CachedBackend(primary, { bus });
    const [inserted, neighbour] = recordsWithDistinctTags(2);
    await primary.create(neighbour!);
    for (const backend of [one, two]) {
      expect(await backend.getByHash(inserted!.keyHash)).toBeNull();
      await backend.getByHash(neighbour!.keyHash);
    }
    await primary.create(inserted!); // behind the library's back, as an SQL import would
    await one.invalidate({ hashes: [inserted!.keyHash] });
    for (const backend of [one, two]) {
      expect(backend.peekByHash(inserted!.keyHash)).toBeUndefined();
      expect(backend.peekByHash(neighbour!.keyHash)).toBeDefined();
    }
    expect(sent).toEqual([{ ids: [], tags: [invalidationTag(inserted!.keyHash)], all: false, origin: expect.any(String) }]);

    for (const bad of [null, 'id-1', { ids: 'id-1' }, { hashes: [1] }, { all: 'yes' }]) {
      await expect(one.invalidate(bad as never)).rejects.toThrow(/invalidate\(\) takes \{ ids\?: string\[\], hashes\?: string\[\], all\?: boolean \}/);
    }
    expect(sent).toHaveLength(1);
  });

  it('keeps two instances in step: a revoke on one is seen by the other at once', async () => {
    const bus = new LocalInvalidationBus();
    const primary = new MemoryBackend();
    const one = new CachedBackend(primary, { bus, ttl: 60_000 });
    const two = new CachedBackend(primary, { bus, ttl: 60_000 });
    const record = await one.create(makeApiKeyRecord());
    expect((await two.getByHash(record.keyHash))?.revokedAt).toBeNull();
    await one.update(record.id, { revokedAt: new Date(), updatedAt: new Date() });
    expect(two.peekByHash(record.keyHash)).toBeUndefined();
    expect((await two.getByHash(record.keyHash))?.revokedAt).toBeInstanceOf(Date);
  });

  it('clears everything when the bus reconnects', async () => {
    const bus = new LocalInvalidationBus();
    const backend = new CachedBackend(new MemoryBackend(), { bus });
    const record = await backend.create(makeApiKeyRecord());
    await backend.getByHash(record.keyHash);
    await backend.getByHash(unknownHash(4));
    expect(backend.cache.size).toBe(2);
    bus.simulateReconnect();
    expect(backend.cache.size).toBe(0);
  });

  it('stops listening on close, and leaves the bus to its owner', async () => {
    const bus = new LocalInvalidationBus();
    const backend = new CachedBackend(new MemoryBackend(), { bus });
    expect(bus.subscriberCount).toBe(1);
    const record = await backend.create(makeApiKeyRecord());
    await backend.getByHash(record.keyHash);
    backend.close();
    expect(bus.subscriberCount).toBe(0);
    await bus.publish({ all: true, origin: 'other' });
    bus.simulateReconnect();
    expect(backend.peekByHash(record.keyHash)).toBeDefined();
  });

  it('completes the write when publishing fails, and warns once without any hash', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const failing: ApiKeyInvalidationBus = {
      publish: async (m) => {
        throw new Error(`broker refused ${JSON.stringify(m)}`);
      },
      subscribe: () => () => undefined,
      onReconnect: () => () => undefined,
    };
    const backend = new CachedBackend(new MemoryBackend(), { bus: failing });
    const record = await backend.create(makeApiKeyRecord());
    const updated = await backend.update(record.id, { name: 'still written', updatedAt: new Date() });
    expect(updated.name).toBe('still written');
    expect(warn).toHaveBeenCalledTimes(1);
    const text = String(warn.mock.calls[0]![0]);
    expect(text).toMatch(/Could not publish/);
    expect(text).not.toContain(record.keyHash);
  });
});

