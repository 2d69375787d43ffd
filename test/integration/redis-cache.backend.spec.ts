import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiKeyService, MemoryBackend, type ApiKey } from 'nestjs-api-auth';
import { RedisCacheBackend, type RedisCacheBackendOptions, type RedisCacheInvalidation } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord, runBackendConformance } from 'nestjs-api-auth/testing';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { redisCacheKeys } from '../../lib/redis/redis-cache.keys.js';
import { CountingBackend } from '../fixtures/counting.backend.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';
import { CACHE_VARIANTS, countingCache, type TestCache } from '../fixtures/redis-cache.fixtures.js';
import { CapturingLogger } from '../fixtures/log-capture.js';

const NAMESPACE = 'api-auth';

/** A primary whose `getByHash` can be held after it has read, to stage a stale fill. */
class GatedBackend extends MemoryBackend {
  gate: Promise<void> | null = null;
  /** Called when a read has read the store and starts waiting at the gate. */
  onGated: (() => void) | null = null;

  override async getByHash(keyHash: string): Promise<ApiKey | null> {
    const record = await super.getByHash(keyHash);
    if (this.gate) {
      this.onGated?.();
      await this.gate;
    }
    return record;
  }
}

describe.each(CACHE_VARIANTS)('RedisCacheBackend with $name on real Redis', (variant) => {
  const prefix = uniqueNamespace(`redis-cache-${variant.name.replace(/\W+/g, '-')}`);
  let raw: Awaited<ReturnType<typeof connectRedis>>;
  const opened: TestCache[] = [];
  const disposables: RedisCacheBackend[] = [];

  beforeAll(async () => {
    raw = await connectRedis();
  });

  afterAll(async () => {
    for (const backend of disposables) await backend.dispose();
    for (const cache of opened) await cache.close();
    await deleteNamespace(raw, prefix);
    expect(await scanKeys(raw, prefix)).toEqual([]);
    await raw.close();
  });

  async function openCache(): Promise<TestCache> {
    const cache = await variant.create(prefix);
    opened.push(cache);
    return cache;
  }

  /** A cached backend over a counted memory primary, and a service over it. */
  async function setup(options: Partial<Omit<RedisCacheBackendOptions, 'cache'>> = {}) {
    const { cache: real } = await openCache();
    const { cache, counts } = countingCache(real);
    const primary = new CountingBackend(options.primary ?? new MemoryBackend());
    // A generous timeout: these tests count reads, and on a loaded CI machine a lookup
    // answered late would fall back to the primary and add one. Outages have their own file.
    const backend = new RedisCacheBackend({ ttl: 300_000, namespace: NAMESPACE, timeoutMs: 2_000, ...options, cache, primary });
    disposables.push(backend);
    const service = new ApiKeyService(resolveApiAuthOptions({ prefix: 'rc_', backend, trackUsage: false }));
    return { backend, primary, service, counts, real };
  }

  runBackendConformance(
    `RedisCacheBackend (${variant.name}) over MemoryBackend`,
    { describe, it, beforeAll, afterAll },
    {
      create: async () => {
        const backend = new RedisCacheBackend({ cache: (await openCache()).cache, primary: new MemoryBackend(), ttl: 60_000, namespace: NAMESPACE });
        disposables.push(backend);
        return backend;
      },
      storeLegacyRecord: async (backend, record) => void (await backend.primary.create(record as ApiKey)),
    },
  );

  it('1,000 verifications of one valid key cost one primary read', async () => {
    const { primary, service, counts } = await setup();
    const { key } = await service.issue({ ownerId: 'o', name: 'hot key' });
    primary.reset();
    const before = counts.mget;
    for (let batch = 0; batch < 10; batch++) {
      const results = await Promise.all(Array.from({ length: 100 }, () => service.verify(key)));
      expect(results.every((apiKey) => apiKey?.ownerId === 'o')).toBe(true);
    }
    expect(primary.calls('getByHash')).toBe(1);
    expect(counts.mget - before).toBe(1_000);
  });

  it('1,000 requests with 100 distinct unknown well-formed keys cost one primary read per key', async () => {
    const { primary, service } = await setup();
    const unknown = Array.from({ length: 100 }, () => service.format.generate());
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(unknown.map((key) => service.authenticate(key)));
      expect(results.every((r) => !r.ok && r.code === 'invalid_api_key')).toBe(true);
    }
    expect(primary.calls('getByHash')).toBe(100);
  });

  it('1,000 malformed keys reach neither the primary nor Redis', async () => {
    const { primary, service, counts } = await setup();
    const valid = service.format.generate();
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    const malformed = [
      valid.slice(0, -1) + flip(valid.at(-1)!), // checksum mismatch
      `xx_${valid.slice(3)}`, // another prefix
      valid.slice(0, -2), // too short
      `${valid.slice(0, 10)}!${valid.slice(11)}`, // outside the alphabet
    ];
    const results = await Promise.all(Array.from({ length: 1_000 }, (_, i) => service.authenticate(malformed[i % 4]!)));
    expect(results.every((r) => !r.ok && r.code === 'invalid_api_key')).toBe(true);
    expect(primary.totalCalls).toBe(0);
    expect(counts).toEqual({ mget: 0, set: 0, del: 0 });
  });

  it('50 concurrent misses on one key share one primary read, and each caller gets its own copy', async () => {
    const { backend, primary } = await setup();
    const record = makeApiKeyRecord();
    await primary.inner.create(record);
    const results = await Promise.all(Array.from({ length: 50 }, () => backend.getByHash(record.keyHash)));
    expect(primary.calls('getByHash')).toBe(1);
    expect(results.every((r) => r?.id === record.id)).toBe(true);
    expect(new Set(results).size).toBe(50);
    results[0]!.scopes.push('mutated');
    expect(results[1]!.scopes).toEqual(record.scopes);
  });

  it('serves a cached key from Redis, not the primary, with every field intact', async () => {
    const { backend, primary } = await setup();
    const record = makeApiKeyRecord({ expiresAt: new Date(Date.now() + 86_400_000), lastUsedAt: new Date(1_700_000_000_123) });
    await primary.inner.create(record);
    await backend.getByHash(record.keyHash);
    primary.reset();
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    expect(primary.calls('getByHash')).toBe(0);
  });

  it('revoke, update and delete through it take effect at once, although the key was cached', async () => {
    const { primary, service } = await setup();
    const revoked = await service.issue({ ownerId: 'o', name: 'to revoke', scopes: ['a'] });
    const updated = await service.issue({ ownerId: 'o', name: 'to update', scopes: ['a'] });
    const deleted = await service.issue({ ownerId: 'o', name: 'to delete' });
    for (const { key } of [revoked, updated, deleted]) expect(await service.verify(key)).not.toBeNull();
    for (const { key } of [revoked, updated, deleted]) expect(await service.verify(key)).not.toBeNull();
    expect(primary.calls('getByHash')).toBe(3);

    await service.revoke(revoked.apiKey.id);
    await service.update(updated.apiKey.id, { scopes: ['a', 'b'] });
    await service.delete(deleted.apiKey.id);

    expect(await service.authenticate(revoked.key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expect((await service.verify(updated.key))?.scopes).toEqual(['a', 'b']);
    expect(await service.authenticate(deleted.key)).toEqual({ ok: false, code: 'invalid_api_key' });
  });

  it("a revoke that finds the key already revoked still ends the cached entry, before the revoking instance's invalidation", async () => {
    const { backend, primary, service, counts, real } = await setup();
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'revoked twice' });
    expect((await service.authenticate(key)).ok).toBe(true);
    // Another instance's revoke, caught between its primary write and its invalidation:
    // the primary says revoked, the shared cache still holds the valid record.
    const current = (await primary.getById(apiKey.id))!;
    await primary.update(current.id, { revokedAt: new Date(), updatedAt: new Date() });
    expect((await service.authenticate(key)).ok).toBe(true);

    // This instance's revoke finds the key revoked and writes nothing to the primary...
    const updatesBefore = primary.calls('update');
    await service.revoke(apiKey.id);
    expect(primary.calls('update')).toBe(updatesBefore);
    // ...and from then on the key is refused here and on any instance reading the cache.
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    const other = new RedisCacheBackend({ ttl: 300_000, namespace: NAMESPACE, timeoutMs: 2_000, cache: real, primary });
    disposables.push(other);
    expect((await other.getByHash(current.keyHash))?.revokedAt).not.toBeNull();

    // A read by id of a key whose entry already shows it revoked costs one cache read, no write.
    const mgetBefore = counts.mget;
    const setBefore = counts.set;
    expect((await backend.getById(apiKey.id))?.revokedAt).not.toBeNull();
    expect(counts.mget - mgetBefore).toBe(1);
    expect(counts.set).toBe(setBefore);
  });

  it('rotation ends the old key at the end of its grace period although it was cached', async () => {
    const { service } = await setup();
    const old = await service.issue({ ownerId: 'o', name: 'rotating' });
    expect(await service.verify(old.key)).not.toBeNull();
    const rotated = await service.rotate(old.apiKey.id, { gracePeriodMs: 0 });
    expect(await service.authenticate(old.key)).toEqual({ ok: false, code: 'expired_api_key' });
    expect((await service.verify(rotated.key))?.rotatedFromId).toBe(old.apiKey.id);
  });

  it('remembers an unknown hash, and creating a key with it clears that negative entry', async () => {
    const { backend, primary } = await setup();
    const record = makeApiKeyRecord();
    expect(await backend.getByHash(record.keyHash)).toBeNull();
    expect(await backend.getByHash(record.keyHash)).toBeNull();
    expect(primary.calls('getByHash')).toBe(1);
    await backend.create(record);
    expect((await backend.getByHash(record.keyHash))?.id).toBe(record.id);
  });

  it('ignores a fill that read the primary before a write and reached Redis after it', async () => {
    const gated = new GatedBackend();
    const { backend, primary, counts } = await setup({ primary: gated });
    const record = makeApiKeyRecord();
    await gated.create(record);

    let release!: () => void;
    gated.gate = new Promise((resolve) => (release = resolve));
    const atGate = new Promise<void>((resolve) => (gated.onGated = resolve));
    const staleRead = backend.getByHash(record.keyHash); // reads the unrevoked record, then waits
    // The write comes after that read by order, not by a pause long enough for it.
    await atGate;
    const revokedAt = new Date();
    await backend.update(record.id, { revokedAt, updatedAt: revokedAt });
    gated.gate = null;
    const setsBefore = counts.set;
    release();
    expect((await staleRead)?.revokedAt).toBeNull(); // it was concurrent with the write
    expect(counts.set).toBe(setsBefore + 1); // and it did write its stale entry

    primary.reset();
    expect((await backend.getByHash(record.keyHash))?.revokedAt).toEqual(revokedAt);
    expect(primary.calls('getByHash')).toBe(1);
  });

  it('a key expiring in 2 s with ttl 5 min is cached no longer and rejected after 2 s', async () => {
    // Date on a fake clock: "2 s later" is a step of that clock, not a sleep, and no
    // stall of a busy machine can carry the two lookups below past the expiry.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      const { primary, service, real } = await setup({ ttl: 300_000 });
      const expiresAt = new Date(Date.now() + 2_000);
      const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'short-lived', expiresAt });
      expect(await service.verify(key)).not.toBeNull();
      expect(await service.verify(key)).not.toBeNull();
      expect(primary.calls('getByHash')).toBe(1);
      const record = await primary.inner.getById(apiKey.id);
      const entryExpires = await real.ttl(redisCacheKeys(NAMESPACE, record!.keyHash).entry);
      expect(entryExpires).toBeDefined();
      expect(entryExpires!).toBeLessThanOrEqual(expiresAt.getTime());

      vi.setSystemTime(expiresAt.getTime() - 1);
      expect(await service.verify(key)).not.toBeNull();
      vi.setSystemTime(expiresAt);
      expect(await service.authenticate(key)).toEqual({ ok: false, code: 'expired_api_key' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('records usage in the primary only, leaving the cached entry (and its lastUsedAt) in place', async () => {
    const { backend, primary, counts } = await setup();
    const record = makeApiKeyRecord();
    await primary.inner.create(record);
    await backend.getByHash(record.keyHash);
    const writes = counts.set + counts.del;
    primary.reset();
    const usedAt = new Date();
    expect(await backend.recordUsage(record.id, usedAt, usedAt)).toBe(true);
    expect((await primary.inner.getById(record.id))?.lastUsedAt).toEqual(usedAt);
    expect(counts.set + counts.del).toBe(writes);
    expect((await backend.getByHash(record.keyHash))?.lastUsedAt).toBeNull();
    expect(primary.calls('getByHash')).toBe(0);
  });

  it('stores neither the key hash nor the plaintext in Redis, in names or values', async () => {
    const { service, primary } = await setup();
    const { key, apiKey } = await service.issue({ ownerId: `owner-${randomUUID()}`, name: 'secretive' });
    await service.verify(key);
    await service.authenticate(service.format.generate()); // a negative entry too
    const keyHash = (await primary.inner.getById(apiKey.id))!.keyHash;
    const names = await scanKeys(raw, prefix);
    expect(names.length).toBeGreaterThan(0);
    const dump = (await Promise.all(names.map(async (name) => `${name}=${await raw.get(name)}`))).join('\n');
    expect(dump).toContain(apiKey.ownerId); // the record is there...
    expect(dump).not.toContain(keyHash); // ...but not its hash
    expect(dump).not.toContain(key);
    expect(dump).not.toContain(key.slice(3, 30));
  });

  it('treats an unreadable entry as a miss and answers from the primary', async () => {
    const { backend, real } = await setup();
    const record = makeApiKeyRecord();
    await backend.create(record);
    const keys = redisCacheKeys(NAMESPACE, record.keyHash);
    const [generation] = await real.mget<string>([keys.generation]);
    expect(typeof generation).toBe('string');
    const now = Date.now();
    await real.set(keys.entry, JSON.stringify({ g: generation, f: now, x: now + 60_000, r: { i: 'forged' } }), 60_000);
    expect((await backend.getByHash(record.keyHash))?.id).toBe(record.id);
    await real.set(keys.entry, 'not json', 60_000);
    expect((await backend.getByHash(record.keyHash))?.id).toBe(record.id);
  });

  it('reports every write to onInvalidate with the id and hash, and survives a throwing hook', async () => {
    const seen: RedisCacheInvalidation[] = [];
    // Each throw is logged as an error, on purpose here: kept and asserted, not printed.
    const logger = new CapturingLogger();
    const { backend } = await setup({
      logger,
      onInvalidate: (invalidation) => {
        seen.push(invalidation);
        throw new Error('hook failure');
      },
    });
    const record = makeApiKeyRecord();
    await backend.create(record);
    await backend.update(record.id, { name: 'renamed', updatedAt: new Date() });
    await backend.delete(record.id);
    await backend.delete(record.id); // already gone: nothing to invalidate
    expect(seen).toEqual(Array.from({ length: 3 }, () => ({ ids: [record.id], hashes: [record.keyHash] })));
    expect(await backend.getByHash(record.keyHash)).toBeNull();
    expect(logger.lines).toEqual(Array.from({ length: 3 }, () => '[error] The onInvalidate hook threw Error; ignored.'));
  });
});
