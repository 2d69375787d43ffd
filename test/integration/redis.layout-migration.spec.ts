import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey } from 'nestjs-api-auth';
import { RedisBackend, type LayoutMigrationReport } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('RedisBackend.migrateFromLayout2 on a real Redis', () => {
  let client: Awaited<ReturnType<typeof connectRedis>>;
  let namespace: string;

  beforeAll(async () => {
    client = await connectRedis();
    namespace = uniqueNamespace('redis-migrate');
  });
  afterAll(async () => {
    await deleteNamespace(client, namespace);
    await client.close();
  });

  it('copies what layout 2 wrote; layout 3 then reads, lists, updates and purges it alike; a rerun writes nothing', async () => {
    const v2 = new RedisBackend(client, { namespace, expireRecords: true, pageSize: 3 });
    const owners = ['alice', 'bob'];
    const records: ApiKey[] = Array.from({ length: 25 }, (_, i) =>
      makeApiKeyRecord({
        ownerId: owners[i % 2],
        createdAt: new Date(Date.now() - (i % 5) * 1_000),
        expiresAt: i % 3 === 0 ? new Date(Date.now() + 3_600_000) : null,
        issuedById: i % 4 === 0 ? 'issuer' : null,
        environment: i % 2 ? 'live' : null,
      }),
    );
    for (const r of records) await v2.create(r);
    await v2.update(records[1]!.id, { revokedAt: new Date(Date.now() - 5_000), updatedAt: new Date() });
    await v2.recordUsage(records[2]!.id, new Date(), new Date());
    const v3 = new RedisBackend(client, { namespace, expireRecords: true, pageSize: 3, layout: 3 });
    const progress: LayoutMigrationReport[] = [];
    const report = await v3.migrateFromLayout2({ batchSize: 7, onProgress: (r) => progress.push(r) });
    expect(report).toMatchObject({ cursor: '0', scanned: 25, copied: 25, updated: 0, unchanged: 0, conflicts: 0 });
    expect(progress.length).toBeGreaterThan(1);

    const now = new Date();
    for (const r of records) {
      expect(await v3.getByHash(r.keyHash)).toEqual(await v2.getByHash(r.keyHash));
      expect(await v3.getById(r.id)).toEqual(await v2.getById(r.id));
    }
    for (const owner of owners) {
      expect(await collect(v3.listByOwner(owner))).toEqual(await collect(v2.listByOwner(owner)));
      expect(await collect(v3.listByOwner(owner, { limit: 4 }))).toEqual(await collect(v2.listByOwner(owner, { limit: 4 })));
      expect(await v3.countByOwner(owner)).toBe(await v2.countByOwner(owner));
    }
    expect(await collect(v3.listAll({ now }))).toEqual(await collect(v2.listAll({ now })));
    expect(await collect(v3.listAll({ now, status: 'revoked' }))).toHaveLength(1);
    const issued = (list: ApiKey[]) => list.map((r) => r.id).sort();
    expect(issued(await collect(v3.listByIssuer('issuer')))).toEqual(issued(await collect(v2.listByIssuer('issuer'))));
    // The Redis expiry came along.
    const expiring = records[0]!;
    expect(Number(await client.sendCommand(['PEXPIRETIME', `${v3.keyPrefix}{h:${expiring.keyHash}}`]))).toBe(
      Number(await client.sendCommand(['PEXPIRETIME', `${v2.keyPrefix}hash:${expiring.keyHash}`])),
    );

    // A rerun writes nothing.
    const keysBefore = (await scanKeys(client, v3.keyPrefix)).length;
    expect(await v3.migrateFromLayout2()).toMatchObject({ scanned: 25, copied: 0, updated: 0, unchanged: 25, conflicts: 0 });
    expect((await scanKeys(client, v3.keyPrefix)).length).toBe(keysBefore);

    // Layout 2 written again meanwhile (a rolling upgrade): the rerun brings it forward.
    await v2.update(records[3]!.id, { name: 'renamed in v2', updatedAt: new Date() });
    const late = makeApiKeyRecord({ ownerId: 'alice' });
    await v2.create(late);
    expect(await v3.migrateFromLayout2()).toMatchObject({ scanned: 26, copied: 1, updated: 1, unchanged: 24 });
    expect((await v3.getById(records[3]!.id))?.name).toBe('renamed in v2');
    expect(await v3.getById(late.id)).toEqual(late);

    // Layout 3 carries on: update, revoke, purge as layout 2 would.
    const revokedAt = new Date(Date.now() - 1_000);
    expect(await v3.update(records[4]!.id, { revokedAt, updatedAt: revokedAt }, { expectedVersion: 1 })).toMatchObject({ version: 2, revokedAt });
    expect(await v3.purge({ revokedBefore: new Date(), limit: 10 })).toBe(2);
    // alice: 13 copied + 1 late, less the one purged.
    expect(await v3.countByOwner('alice')).toBe(13);
  });

  it('is refused by a layout-2 backend, and takes a bad batch size by name', async () => {
    const v2 = new RedisBackend(client, { namespace });
    expect(() => v2.migrateFromLayout2()).toThrow(/copies into layout 3/);
    const v3 = new RedisBackend(client, { namespace, layout: 3 });
    await expect(v3.migrateFromLayout2({ batchSize: 0 })).rejects.toThrow(/"batchSize" must be an integer/);
  });
});
