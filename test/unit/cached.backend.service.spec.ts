import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiKeyService, CachedBackend, MemoryBackend, type ApiKey, type ApiKeyBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';

class CountingBackend extends MemoryBackend {
  reads = 0;
  override async getByHash(keyHash: string): Promise<ApiKey | null> {
    this.reads++;
    return super.getByHash(keyHash);
  }
}

function setup(options: { ttl?: number } = {}) {
  const primary = new CountingBackend();
  const backend = new CachedBackend(primary, options);
  const service = new ApiKeyService(resolveApiAuthOptions({ backend, prefix: 'l1_', trackUsage: false }));
  return { primary, backend, service };
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('ApiKeyService.authenticate over an L1', () => {
  it('answers a warm key from the L1: no primary read, no timer, the same frozen view each time', async () => {
    const { primary, service } = setup();
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n', scopes: ['read'] });
    const first = await service.authenticate(key);
    expect(first).toEqual({ ok: true, apiKey });
    expect(primary.reads).toBe(1);

    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const again = await service.authenticate(key);
    const third = await service.authenticate(key);
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    expect(primary.reads).toBe(1);
    expect(again.ok && third.ok && again.apiKey === third.apiKey).toBe(true);
    if (!again.ok) throw new Error('expected ok');
    expect(again.apiKey).toEqual(apiKey);
    expect(Object.isFrozen(again.apiKey)).toBe(true);
    expect('keyHash' in again.apiKey).toBe(false);
  });

  it('gives the same answers as the uncached service for valid, unknown and malformed keys', async () => {
    const { primary, service } = setup();
    const plain = new ApiKeyService(resolveApiAuthOptions({ backend: primary, prefix: 'l1_', trackUsage: false }));
    const { key } = await service.issue({ ownerId: 'o', name: 'n', metadata: { plan: 'pro' } });
    const unknown = service.format.generate();
    for (const input of [key, key, unknown, unknown, 'l1_garbage', '']) {
      expect(await service.authenticate(input)).toEqual(await plain.authenticate(input));
    }
  });

  it('refuses an unknown key from the negative cache and a malformed one before any lookup', async () => {
    const { primary, backend, service } = setup();
    const unknown = service.format.generate();
    for (let i = 0; i < 10; i++) expect(await service.authenticate(unknown)).toMatchObject({ code: 'invalid_api_key' });
    expect(primary.reads).toBe(1);
    const size = backend.cache.size;
    for (let i = 0; i < 10; i++) expect(await service.authenticate(`${unknown.slice(0, -1)}!`)).toMatchObject({ code: 'invalid_api_key' });
    expect(primary.reads).toBe(1);
    expect(backend.cache.size).toBe(size);
  });

  it('refuses a key revoked or rotated out through the same service at once', async () => {
    const { service } = setup({ ttl: 60_000 });
    const a = await service.issue({ ownerId: 'o', name: 'a' });
    expect((await service.authenticate(a.key)).ok).toBe(true);
    await service.revoke(a.apiKey.id);
    expect(await service.authenticate(a.key)).toEqual({ ok: false, code: 'revoked_api_key' });

    const b = await service.issue({ ownerId: 'o', name: 'b', scopes: ['x'] });
    expect((await service.authenticate(b.key)).ok).toBe(true);
    await service.update(b.apiKey.id, { scopes: ['y'] });
    const changed = await service.authenticate(b.key);
    expect(changed.ok && changed.apiKey.scopes).toEqual(['y']);
    await service.rotate(b.apiKey.id, { gracePeriodMs: 0 });
    expect(await service.authenticate(b.key)).toEqual({ ok: false, code: 'expired_api_key' });
  });

  it('refuses a cached key from the instant it expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const { primary, service } = setup({ ttl: 60_000 });
    const { key } = await service.issue({ ownerId: 'o', name: 'n', expiresAt: new Date('2030-01-01T00:00:05Z') });
    expect((await service.authenticate(key)).ok).toBe(true);
    vi.setSystemTime(new Date('2030-01-01T00:00:04.999Z'));
    expect((await service.authenticate(key)).ok).toBe(true);
    expect(primary.reads).toBe(1);
    vi.setSystemTime(new Date('2030-01-01T00:00:05Z'));
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'expired_api_key' });
    // Now cached as expired: further attempts stay off the primary.
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'expired_api_key' });
    expect(primary.reads).toBe(2);
  });

  it('answers backend_unavailable when the primary fails, caches nothing, and recovers', async () => {
    const { primary, backend, service } = setup();
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    vi.spyOn(primary, 'getByHash').mockRejectedValueOnce(new Error('down'));
    expect(await service.authenticate(key)).toMatchObject({ ok: false, code: 'backend_unavailable' });
    expect(backend.cache.size).toBe(0);
    expect((await service.authenticate(key)).ok).toBe(true);
  });

  it('falls back to the async lookup when a custom peekByHash throws', async () => {
    const primary = new MemoryBackend();
    const backend: ApiKeyBackend & { peekByHash: () => never } = Object.assign(Object.create(primary), {
      peekByHash: () => {
        throw new Error('broken cache');
      },
    });
    const service = new ApiKeyService(resolveApiAuthOptions({ backend, prefix: 'l1_', trackUsage: false }));
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    expect(await service.authenticate(key)).toEqual({ ok: true, apiKey });
  });
});

describe('revoke on an instance whose L1 holds a key another instance revoked', () => {
  it('refuses the key on this instance as soon as its own revoke returns', async () => {
    // Two instances over one store, with no bus between them: the second hears of the
    // first's revoke only when its L1 entry expires. Revoking on the second finds the
    // key already revoked; its revoke must still leave it refusing the key.
    const primary = new MemoryBackend();
    const make = () =>
      new ApiKeyService(resolveApiAuthOptions({ backend: new CachedBackend(primary, { ttl: 60_000 }), prefix: 'l1_', trackUsage: false }));
    const one = make();
    const two = make();
    const { key, apiKey } = await one.issue({ ownerId: 'o', name: 'n' });
    expect((await two.authenticate(key)).ok).toBe(true);

    const first = await one.revoke(apiKey.id);
    // Allowed: another instance may serve its L1 until the invalidation reaches it.
    expect((await two.authenticate(key)).ok).toBe(true);

    const again = await two.revoke(apiKey.id);
    expect(again.revokedAt).toEqual(first.revokedAt);
    expect(await two.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expect((await primary.getById(apiKey.id))?.updatedAt).toEqual(first.updatedAt);
  });
});
