import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend, type ApiKey } from 'nestjs-api-auth';
import { makeApiKeyRecord, runBackendConformance } from 'nestjs-api-auth/testing';

runBackendConformance('MemoryBackend', { describe, it, beforeAll, afterAll }, {
  create: () => new MemoryBackend(),
  // A record built before the fields existed, as a custom caller might still pass one.
  storeLegacyRecord: async (backend, record) => void (await backend.create(record as ApiKey)),
});

describe('MemoryBackend beyond the contract', () => {
  async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const item of iterable) out.push(item);
    return out;
  }

  it('ignores fields update may not change (ownerId, keyHash), even when a caller passes them', async () => {
    const backend = new MemoryBackend();
    const record = makeApiKeyRecord({ ownerId: 'alice' });
    await backend.create(record);
    const changes = { name: 'renamed', ownerId: 'bob', keyHash: 'f'.repeat(64), updatedAt: new Date() };
    const updated = await backend.update(record.id, changes as Parameters<MemoryBackend['update']>[1]);
    expect(updated).toMatchObject({ name: 'renamed', ownerId: 'alice', keyHash: record.keyHash, version: 2 });
    expect((await collect(backend.listByOwner('alice'))).map((r) => r.id)).toEqual([record.id]);
    expect(await backend.countByOwner('bob')).toBe(0);
  });

  it('skips records deleted while a listing is being iterated', async () => {
    const backend = new MemoryBackend();
    const records = Array.from({ length: 4 }, () => makeApiKeyRecord({ ownerId: 'carol' }));
    for (const r of records) await backend.create(r);
    const seen: string[] = [];
    for await (const r of backend.listByOwner('carol')) {
      seen.push(r.id);
      // Delete everything not yet yielded: the iteration must stop yielding them.
      if (seen.length === 1) for (const other of records) if (other.id !== r.id) await backend.delete(other.id);
    }
    expect(seen).toHaveLength(1);
  });

  it('counts with size and empties with clear', async () => {
    const backend = new MemoryBackend();
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect(backend.size).toBe(1);
    backend.clear();
    expect(backend.size).toBe(0);
    expect(await backend.getByHash(record.keyHash)).toBeNull();
    await backend.create(record);
    expect(backend.size).toBe(1);
  });
});

describe('MemoryBackend synchronous fast path (peekByHash)', () => {
  it('answers a frozen snapshot without the hash in its view, and null for an unknown hash', async () => {
    const backend = new MemoryBackend();
    const record = makeApiKeyRecord();
    await backend.create(record);
    const hit = backend.peekByHash(record.keyHash);
    expect(hit?.record.id).toBe(record.id);
    expect(hit?.view).not.toHaveProperty('keyHash');
    expect(Object.isFrozen(hit?.view)).toBe(true);
    expect(backend.peekByHash(record.keyHash)).toBe(hit); // built once, shared
    expect(backend.peekByHash(makeApiKeyRecord().keyHash)).toBeNull();
  });

  it('drops the snapshot on every write to the record', async () => {
    const backend = new MemoryBackend();
    const record = makeApiKeyRecord();
    await backend.create(record);
    const first = backend.peekByHash(record.keyHash);
    await backend.update(record.id, { revokedAt: new Date(), updatedAt: new Date() });
    const revoked = backend.peekByHash(record.keyHash);
    expect(revoked).not.toBe(first);
    expect(revoked?.record.revokedAt).toBeInstanceOf(Date);
    await backend.recordUsage(record.id, new Date(), new Date());
    expect(backend.peekByHash(record.keyHash)?.record.lastUsedAt).toBeInstanceOf(Date);
    await backend.delete(record.id);
    expect(backend.peekByHash(record.keyHash)).toBeNull();
  });

  it('steps aside when getByHash is overridden by a subclass or a Proxy, so wrappers are always consulted', async () => {
    class Failing extends MemoryBackend {
      override async getByHash(): Promise<never> {
        throw new Error('down');
      }
    }
    const failing = new Failing();
    const record = makeApiKeyRecord();
    await failing.create(record);
    expect(failing.peekByHash(record.keyHash)).toBeUndefined();

    const plain = new MemoryBackend();
    await plain.create(record);
    const proxied = new Proxy(plain, {
      get: (target, property, receiver) =>
        property === 'getByHash' ? async () => null : Reflect.get(target, property, receiver),
    });
    expect(proxied.peekByHash(record.keyHash)).toBeUndefined();
  });
});
