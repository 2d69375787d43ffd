import { describe, expect, it } from 'vitest';
import {
  ApiKeyAlreadyRotatedError,
  ApiKeyService,
  BackendUnavailableError,
  MemoryBackend,
  type ApiKey,
  type ApiKeyBackend,
} from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';

/**
 * A store whose `create` can fail after writing (a reply lost to a timeout or a
 * dropped connection), or fail without writing; either way the caller sees an error.
 */
class LossyBackend extends MemoryBackend {
  mode: 'ok' | 'write-then-fail' | 'fail' = 'ok';
  deletes: string[] = [];

  override async create(apiKey: ApiKey): Promise<ApiKey> {
    if (this.mode === 'fail') throw new BackendUnavailableError('the store did not answer create');
    const stored = await super.create(apiKey);
    if (this.mode === 'write-then-fail') throw new BackendUnavailableError('the reply to create was lost');
    return stored;
  }

  override async delete(id: string): Promise<void> {
    this.deletes.push(id);
    return super.delete(id);
  }
}

function serviceOver(backend: ApiKeyBackend): ApiKeyService {
  return new ApiKeyService(resolveApiAuthOptions({ backend, prefix: 'cf_', trackUsage: false }));
}

async function owned(service: ApiKeyService, ownerId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const key of service.listByOwner(ownerId)) ids.push(key.id);
  return ids;
}

/** A lossy store, a service over it, and one key to rotate. */
async function withKey(ownerId: string) {
  const backend = new LossyBackend();
  const service = serviceOver(backend);
  const { apiKey: old } = await service.issue({ ownerId, name: 'old' });
  return { backend, service, old };
}

describe('a create that fails after it wrote', () => {
  it('rotate: the stored replacement is removed, so a retry rotates instead of answering "already rotated"', async () => {
    const { backend, service, old } = await withKey('o');

    backend.mode = 'write-then-fail';
    await expect(service.rotate(old.id)).rejects.toBeInstanceOf(BackendUnavailableError);
    // Nobody got the replacement's plaintext, and nothing of it is left.
    expect(await owned(service, 'o')).toEqual([old.id]);

    backend.mode = 'ok';
    const rotated = await service.rotate(old.id);
    expect(rotated.apiKey.rotatedFromId).toBe(old.id);
    expect((await service.authenticate(rotated.key)).ok).toBe(true);
    expect((await owned(service, 'o')).sort()).toEqual([old.id, rotated.apiKey.id].sort());
  });

  it('issue: no record is left that nobody holds the key to', async () => {
    const backend = new LossyBackend();
    const service = serviceOver(backend);
    backend.mode = 'write-then-fail';
    await expect(service.issue({ ownerId: 'o2', name: 'lost' })).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(await owned(service, 'o2')).toEqual([]);
  });

  it("never removes a concurrent rotation's replacement: only this attempt's record, by its key hash", async () => {
    const { backend, service, old } = await withKey('o3');
    // With a grace period the old key stays valid, so a second rotation gets as far
    // as creating its replacement.
    const winner = await service.rotate(old.id, { gracePeriodMs: 60_000 });

    // Its create fails outright; the id is taken by the winner's replacement, with
    // another key hash: that record must stay.
    backend.mode = 'fail';
    backend.deletes.length = 0;
    await expect(service.rotate(old.id, { gracePeriodMs: 60_000 })).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(backend.deletes).toEqual([]);
    backend.mode = 'ok';
    expect((await service.authenticate(winner.key)).ok).toBe(true);
    await expect(service.rotate(old.id, { gracePeriodMs: 60_000 })).rejects.toBeInstanceOf(ApiKeyAlreadyRotatedError);
  });

  it('leaves the store alone when the create wrote nothing', async () => {
    const { backend, service, old } = await withKey('o4');
    backend.mode = 'fail';
    await expect(service.rotate(old.id)).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(backend.deletes).toEqual([]);
    backend.mode = 'ok';
    expect((await service.rotate(old.id)).apiKey.rotatedFromId).toBe(old.id);
  });
});
