import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService, MemoryBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { RedisCacheBackend, RedisTwoTierBackend } from 'nestjs-api-auth/redis';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';
import { CACHE_VARIANTS, type TestCache } from '../fixtures/redis-cache.fixtures.js';

/**
 * Keyv prefixes its namespace onto every `getMany` key, but onto a `get`/`set`/`del` key
 * only when the key does not already start with `<namespace>:`. A RedisCacheBackend
 * whose keys start that way wrote its generations where its `mget` never looked, so
 * every write read back as "The Redis cache did not keep an invalidation" and the cache
 * stayed off. The backend now refuses that configuration at construction.
 */
describe.each(CACHE_VARIANTS)('a Keyv namespace against the backend namespace, with $name on real Redis', (variant) => {
  const root = uniqueNamespace(`keyv-ns-${variant.name.replace(/\W+/g, '-')}`).slice(0, -1);
  let raw: Awaited<ReturnType<typeof connectRedis>>;
  const opened: TestCache[] = [];
  const open = async (keyvNamespace: string) => {
    const cache = await variant.create(keyvNamespace);
    opened.push(cache);
    return cache.cache;
  };

  beforeAll(async () => {
    raw = await connectRedis();
  });

  afterAll(async () => {
    for (const cache of opened) await cache.close();
    await deleteNamespace(raw, root);
    await raw.close();
  });

  it('Keyv itself writes a key that starts with its namespace under one Redis key and reads it under another', async () => {
    // Why the check exists; if Keyv makes the two agree, this fails and the check can go.
    const cache = await open(root);
    const key = `${root}:v1:probe`;
    await cache.set(key, 'written', 60_000);
    expect(await cache.get(key)).toBe('written');
    expect(await cache.mget([key])).toEqual([undefined]);
    // The two addresses, as Redis sees them (KEYS/MONITOR show the same).
    expect((await scanKeys(raw, root)).filter((k) => k.endsWith(':v1:probe'))).toHaveLength(1);
    await cache.del(key);
  });

  it.each([
    ['the same as the backend namespace', (ns: string) => ns, (ns: string) => ns],
    ['the first part of a backend namespace with ":"', (ns: string) => ns, (ns: string) => `${ns}:api`],
  ])('refuses a Keyv namespace %s, naming it, before it touches Redis', async (_, keyvNamespace, backendNamespace) => {
    const cache = await open(keyvNamespace(root));
    const primary = new MemoryBackend();
    const message = new RegExp(`Keyv namespace "${keyvNamespace(root)}", which starts the backend's cache keys`);
    expect(() => new RedisCacheBackend({ cache, primary, ttl: 60_000, namespace: backendNamespace(root) })).toThrow(message);
    expect(() => new RedisTwoTierBackend({ redis: raw, cache, primary, ttl: 60_000, namespace: backendNamespace(root) })).toThrow(message);
    expect(await scanKeys(raw, `${root}:`)).toEqual([]);
  });

  it('with a Keyv namespace of its own, every invalidation is kept and another instance sees it', async () => {
    const primary = new MemoryBackend();
    const logs = new CapturingLogger();
    const make = async () =>
      new RedisCacheBackend({ cache: await open(`${root}-cache`), primary, ttl: 60_000, namespace: root, logger: logs });
    const a = await make();
    const b = await make();
    const serviceA = new ApiKeyService(resolveApiAuthOptions({ backend: a, prefix: 'kn_', trackUsage: false }));
    const serviceB = new ApiKeyService(resolveApiAuthOptions({ backend: b, prefix: 'kn_', trackUsage: false }));
    try {
      const { key, apiKey } = await serviceA.issue({ ownerId: 'o', name: 'n' });
      expect((await serviceB.authenticate(key)).ok).toBe(true); // B fills the shared entry
      await serviceA.revoke(apiKey.id);
      expect(await serviceB.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
      expect([a.cacheAvailable, b.cacheAvailable]).toEqual([true, true]);
      expect(logs.lines).toEqual([]);
      // One generation, under the one Redis key that set and mget both address.
      expect((await scanKeys(raw, `${root}-cache`)).filter((k) => k.endsWith(':g'))).toHaveLength(1);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});

describe('the Keyv namespace check without Redis', () => {
  it('accepts a Keyv that does not prefix, and the default Keyv namespace', () => {
    const primary = new MemoryBackend();
    const unprefixed = createCache({ stores: [new Keyv({ namespace: 'api-auth', useKeyPrefix: false })] });
    expect(() => new RedisCacheBackend({ cache: unprefixed, primary, ttl: 60_000 })).not.toThrow();
    expect(() => new RedisCacheBackend({ cache: createCache(), primary, ttl: 60_000 })).not.toThrow();
    const prefixed = createCache({ stores: [new Keyv({ namespace: 'api-auth' })] });
    expect(() => new RedisCacheBackend({ cache: prefixed, primary, ttl: 60_000 })).toThrow(/Keyv namespace "api-auth"/);
  });
});
