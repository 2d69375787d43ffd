import { createCache } from 'cache-manager';
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from 'nestjs-api-auth';
import { RedisCacheBackend, type RedisCacheBackendOptions } from 'nestjs-api-auth/redis';
import { resolveRedisCacheOptions } from '../../lib/redis/redis-cache.options.js';

describe('RedisCacheBackend options', () => {
  // An in-memory cache-manager cache: enough to construct; behaviour is tested on real Redis.
  const base = (): RedisCacheBackendOptions => ({ cache: createCache(), primary: new MemoryBackend(), ttl: 60_000 });

  it('applies the documented defaults', () => {
    expect(resolveRedisCacheOptions(base())).toEqual({
      ttl: 60_000,
      negativeTtl: 30_000,
      timeoutMs: 150,
      retryIntervalMs: 1_000,
      namespace: 'api-auth',
      unreachableWrites: 'refuse',
      writeTimeoutMs: 5_000,
    });
    expect(resolveRedisCacheOptions({ ...base(), ttl: 10_000 }).negativeTtl).toBe(10_000);
    expect(resolveRedisCacheOptions({ ...base(), unreachableWrites: 'replay', writeTimeoutMs: 2_000 })).toMatchObject({
      unreachableWrites: 'replay',
      writeTimeoutMs: 2_000,
    });
  });

  it.each([
    [{ ttl: undefined }, /"ttl" must be a positive integer/],
    [{ ttl: 0 }, /"ttl" must be a positive integer/],
    [{ ttl: 1.5 }, /"ttl" must be a positive integer/],
    [{ negativeTtl: -1 }, /"negativeTtl"/],
    [{ timeoutMs: '150' }, /"timeoutMs"/],
    [{ retryIntervalMs: 0 }, /"retryIntervalMs"/],
    [{ namespace: 'has space' }, /"namespace"/],
    [{ namespace: 'a{b}' }, /"namespace"/],
    [{ cache: {} }, /"cache" must be a cache-manager Cache \(missing "mget"\)/],
    [{ cache: undefined }, /"cache"/],
    [{ primary: { getByHash: () => null } }, /"primary" must implement ApiKeyBackend \(missing "getById"\)/],
    [{ onInvalidate: 'yes' }, /"onInvalidate" must be a function/],
    [{ unreachableWrites: 'commit' }, /"unreachableWrites" must be "refuse" or "replay" \(got "commit"\)/],
    [{ unreachableWrites: true }, /"unreachableWrites" must be "refuse" or "replay"/],
    [{ writeTimeoutMs: 0 }, /"writeTimeoutMs" must be a positive integer/],
    [{ writeTimeoutMs: 2.5 }, /"writeTimeoutMs"/],
  ])('rejects %o with a message naming the option', (override, message) => {
    expect(() => new RedisCacheBackend({ ...base(), ...(override as object) })).toThrow(message);
  });

  it('offers countByOwner exactly when the primary does', async () => {
    const primary = new MemoryBackend();
    expect(typeof new RedisCacheBackend({ ...base(), primary }).countByOwner).toBe('function');
    const { countByOwner: _, ...withoutCount } = Object.fromEntries(
      ['getByHash', 'getById', 'create', 'update', 'delete', 'listByOwner', 'recordUsage', 'countByOwner'].map((m) => [
        m,
        (primary as any)[m].bind(primary),
      ]),
    );
    expect(new RedisCacheBackend({ ...base(), primary: withoutCount as any }).countByOwner).toBeUndefined();
  });
});
