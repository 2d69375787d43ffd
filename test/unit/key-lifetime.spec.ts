import { ApiKeyService, ApiKeyValidationError, MemoryBackend } from 'nestjs-api-auth';
import { describe, expect, it } from 'vitest';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { makeService } from '../fixtures/service.js';

const DAY = 86_400_000;

describe('keyLifetime', () => {
  it('is validated at start-up: positive integers, known fields, default no longer than max', () => {
    const resolve = (keyLifetime: unknown) => () => resolveApiAuthOptions({ keyLifetime } as never);
    expect(resolve({ defaultMs: 0 })).toThrow('"keyLifetime.defaultMs" must be a positive integer');
    expect(resolve({ maxMs: -1 })).toThrow('"keyLifetime.maxMs" must be a positive integer');
    expect(resolve({ maxMs: 1.5 })).toThrow('"keyLifetime.maxMs"');
    expect(resolve({ defaultMs: 2 * DAY, maxMs: DAY })).toThrow('"keyLifetime.defaultMs" (172800000) must not exceed "keyLifetime.maxMs" (86400000)');
    expect(resolve({ maxDays: 3 })).toThrow('maxDays');
    expect(resolve('30d')).toThrow('"keyLifetime" must be an object');
    expect(resolveApiAuthOptions({ keyLifetime: { defaultMs: DAY, maxMs: DAY } }).keyLifetime).toEqual({ defaultMs: DAY, maxMs: DAY });
    expect(resolveApiAuthOptions({}).keyLifetime).toEqual({ defaultMs: null, maxMs: null });
  });

  it('gives keys issued or imported without expiresAt the default; an explicit null stands without a maximum', async () => {
    const { service } = makeService({ keyLifetime: { defaultMs: 30 * DAY } });
    const before = Date.now();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'k' });
    expect(apiKey.expiresAt!.getTime() - before).toBeGreaterThanOrEqual(30 * DAY);
    expect(apiKey.expiresAt!.getTime() - Date.now()).toBeLessThanOrEqual(30 * DAY);
    const given = new Date(Date.now() + DAY);
    expect((await service.issue({ ownerId: 'o', name: 'k', expiresAt: given })).apiKey.expiresAt).toEqual(given);
    expect((await service.issue({ ownerId: 'o', name: 'k', expiresAt: null })).apiKey.expiresAt).toBeNull();
    const imported = await service.import({ key: service.format.generate() }, { ownerId: 'o', name: 'imported' });
    expect(imported.expiresAt!.getTime() - before).toBeGreaterThanOrEqual(30 * DAY);
  });

  it('refuses an expiry past the maximum, or none, on issue, import and update, writing nothing', async () => {
    const { service, backend } = makeService({ keyLifetime: { maxMs: 7 * DAY } });
    const tooLate = new Date(Date.now() + 8 * DAY);
    await expect(service.issue({ ownerId: 'o', name: 'k', expiresAt: tooLate })).rejects.toThrow(ApiKeyValidationError);
    await expect(service.issue({ ownerId: 'o', name: 'k' })).rejects.toMatchObject({ field: 'expiresAt' });
    await expect(service.issue({ ownerId: 'o', name: 'k', expiresAt: null })).rejects.toMatchObject({ field: 'expiresAt' });
    await expect(service.import({ key: service.format.generate() }, { ownerId: 'o', name: 'k', expiresAt: tooLate })).rejects.toThrow(
      ApiKeyValidationError,
    );
    expect(backend.size).toBe(0);

    const { apiKey } = await service.issue({ ownerId: 'o', name: 'k', expiresAt: new Date(Date.now() + DAY) });
    await expect(service.update(apiKey.id, { expiresAt: tooLate })).rejects.toMatchObject({ field: 'expiresAt' });
    await expect(service.update(apiKey.id, { expiresAt: null })).rejects.toMatchObject({ field: 'expiresAt' });
    const sooner = new Date(Date.now() + 2 * DAY);
    expect((await service.update(apiKey.id, { expiresAt: sooner })).expiresAt).toEqual(sooner);
    expect((await service.get(apiKey.id))?.version).toBe(2);
  });

  it("caps a rotation's replacement at the maximum, so keys from before the limit come within it", async () => {
    const backend = new MemoryBackend();
    // Issued before the limit existed (same store, no keyLifetime).
    const old = new ApiKeyService(resolveApiAuthOptions({ prefix: 'test_', backend }));
    const { apiKey: never } = await old.issue({ ownerId: 'o', name: 'never' });
    const short = await old.issue({ ownerId: 'o', name: 'short', expiresAt: new Date(Date.now() + DAY) });
    const limited = new ApiKeyService(resolveApiAuthOptions({ prefix: 'test_', backend, keyLifetime: { maxMs: 7 * DAY } }));
    const start = Date.now();
    const rotated = await limited.rotate(never.id);
    expect(rotated.apiKey.expiresAt!.getTime()).toBeGreaterThanOrEqual(start + 7 * DAY);
    expect(rotated.apiKey.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 7 * DAY);
    // Within the limit already: kept as it was.
    expect((await limited.rotate(short.apiKey.id)).apiKey.expiresAt).toEqual(short.apiKey.expiresAt);
  });
});
