import {
  ApiKeyService,
  ApiKeyValidationError,
  CachedBackend,
  KeyHasher,
  LocalInvalidationBus,
  MemoryBackend,
  UnsupportedBackendOperationError,
  type ApiKeyBackend,
  type ApiKeyEvent,
} from 'nestjs-api-auth';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { describe, expect, it } from 'vitest';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { requiredMethodsOf } from '../fixtures/required-methods.js';

const HOUR = 3_600_000;

function service(backend: ApiKeyBackend, options: object = {}) {
  const events: ApiKeyEvent[] = [];
  const instance = new ApiKeyService(resolveApiAuthOptions({ prefix: 'test_', backend, onEvent: (e) => void events.push(e), ...options }));
  return { service: instance, events };
}

describe('ApiKeyService.purge', () => {
  it('deletes in bounded batches, returns what it did, and continues on the next call', async () => {
    const backend = new MemoryBackend();
    const { service: keys, events } = service(backend);
    const expired = Array.from({ length: 7 }, () => makeApiKeyRecord({ expiresAt: new Date(Date.now() - 2 * HOUR) }));
    const revoked = makeApiKeyRecord({ revokedAt: new Date(Date.now() - 2 * HOUR) });
    const recent = makeApiKeyRecord({ expiresAt: new Date(Date.now() - 1_000), revokedAt: new Date(Date.now() - 1_000) });
    const live = makeApiKeyRecord({ expiresAt: new Date(Date.now() + HOUR) });
    for (const record of [...expired, revoked, recent, live]) await backend.create(record);

    const hourAgo = new Date(Date.now() - HOUR);
    expect(await keys.purge({ expiredBefore: hourAgo, revokedBefore: hourAgo, batchSize: 3, maxBatches: 2 })).toEqual({
      deleted: 6,
      batches: 2,
      done: false,
    });
    expect(await keys.purge({ expiredBefore: hourAgo, revokedBefore: hourAgo, batchSize: 3, maxBatches: 2 })).toEqual({
      deleted: 2,
      batches: 1,
      done: true,
    });
    expect(backend.size).toBe(2);
    expect(await keys.purge({ expiredBefore: hourAgo, revokedBefore: hourAgo })).toEqual({ deleted: 0, batches: 1, done: true });
    // Counts only, and none for a purge that deleted nothing.
    expect(events).toEqual([
      { type: 'api-key.purged', deleted: 6, batches: 2, done: false, at: expect.any(Date) },
      { type: 'api-key.purged', deleted: 2, batches: 1, done: true, at: expect.any(Date) },
    ]);
  });

  it('refuses bad arguments before touching the store', async () => {
    const backend = new MemoryBackend();
    await backend.create(makeApiKeyRecord({ expiresAt: new Date(Date.now() - HOUR) }));
    const { service: keys } = service(backend);
    const now = Date.now();
    await expect(keys.purge({})).rejects.toThrow(ApiKeyValidationError);
    await expect(keys.purge({ expiredBefore: new Date(now + HOUR) })).rejects.toMatchObject({ field: 'expiredBefore' });
    await expect(keys.purge({ revokedBefore: new Date(Number.NaN) })).rejects.toMatchObject({ field: 'revokedBefore' });
    await expect(keys.purge({ expiredBefore: new Date(now), batchSize: 0 })).rejects.toMatchObject({ field: 'batchSize' });
    await expect(keys.purge({ expiredBefore: new Date(now), maxBatches: 1.5 })).rejects.toMatchObject({ field: 'maxBatches' });
    await expect(keys.purge({ expiredBefore: new Date(now), before: 1 } as never)).rejects.toMatchObject({ field: 'before' });
    expect(backend.size).toBe(1);
  });

  it('names the missing capability on a custom backend without purge', async () => {
    const { service: keys } = service(requiredMethodsOf(new MemoryBackend()));
    const error = await keys.purge({ expiredBefore: new Date() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedBackendOperationError);
    expect((error as UnsupportedBackendOperationError).operation).toBe('purge');
    expect((error as Error).message).toContain('"purge"');
  });

  it('drops purged keys from the L1 of every instance, so they read as unknown at once', async () => {
    const primary = new MemoryBackend();
    const bus = new LocalInvalidationBus();
    const a = service(new CachedBackend(primary, { bus, ttl: HOUR }));
    const bCache = new CachedBackend(primary, { bus, ttl: HOUR });
    const b = service(bCache);
    // A key revoked an hour ago (the purge bound may not lie in the future).
    const key = a.service.format.generate();
    await primary.create(makeApiKeyRecord({ keyHash: new KeyHasher().hash(key), revokedAt: new Date(Date.now() - HOUR) }));
    // Both instances now hold the revoked record in their L1.
    expect(await a.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expect(await b.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expect(bCache.cache.size).toBe(1);

    expect((await a.service.purge({ revokedBefore: new Date() })).deleted).toBe(1);
    expect(bCache.cache.size).toBe(0);
    expect(await b.service.authenticate(key)).toEqual({ ok: false, code: 'invalid_api_key' });
    expect(await a.service.authenticate(key)).toEqual({ ok: false, code: 'invalid_api_key' });
  });

  it('drops the whole L1 after a purge by a store that does not say what it deleted', async () => {
    const memory = new MemoryBackend();
    const silent: ApiKeyBackend = { ...requiredMethodsOf(memory), purge: ({ expiredBefore, revokedBefore, limit }) => memory.purge({ expiredBefore, revokedBefore, limit }) };
    const cached = new CachedBackend(silent, { ttl: HOUR });
    const { service: keys } = service(cached);
    const { key } = await keys.issue({ ownerId: 'o', name: 'live' });
    await keys.verify(key);
    expect(cached.cache.size).toBe(1);
    expect((await keys.purge({ expiredBefore: new Date() })).deleted).toBe(0);
    expect(cached.cache.size).toBe(1);
    await memory.create(makeApiKeyRecord({ expiresAt: new Date(Date.now() - HOUR) }));
    expect((await keys.purge({ expiredBefore: new Date() })).deleted).toBe(1);
    expect(cached.cache.size).toBe(0);
  });
});

describe('the purge option', () => {
  it('is validated at start-up', () => {
    const resolve = (purge: unknown, backend?: ApiKeyBackend) => () => resolveApiAuthOptions({ purge, backend } as never);
    expect(resolve({})).toThrow('"purge.intervalMs" must be an integer from 1000');
    expect(resolve({ intervalMs: 999 })).toThrow('"purge.intervalMs"');
    expect(resolve({ intervalMs: 60_000, batchSize: 0 })).toThrow('"purge.batchSize"');
    expect(resolve({ intervalMs: 60_000, expiredFor: -1 })).toThrow('"purge.expiredFor"');
    expect(resolve({ intervalMs: 60_000, expiredFor: null, revokedFor: null })).toThrow('"purge.expiredFor" or "purge.revokedFor" must be set');
    expect(resolve({ intervalMs: 60_000, every: 1 })).toThrow('every');
    expect(resolve({ intervalMs: 60_000 }, requiredMethodsOf(new MemoryBackend()))).toThrow(
      'option "purge" needs a backend that implements the optional method "purge"',
    );
    expect(resolve({ intervalMs: 60_000, revokedFor: null })().purge).toEqual({
      intervalMs: 60_000,
      expiredFor: 7 * 24 * HOUR,
      revokedFor: null,
      batchSize: 500,
    });
  });
});
