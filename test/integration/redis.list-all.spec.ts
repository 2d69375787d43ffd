import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey } from 'nestjs-api-auth';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { ownerEntry } from '../../lib/redis/redis-record.codec.js';
import { encodeV1Record } from '../fixtures/redis-record-v1.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const newestFirst = (records: ApiKey[]) =>
  [...records].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1)).map((r) => r.id);

/**
 * Writes `record` as a release before the index across owners stored it: record, id
 * index and owner set, and `drop` stored fields from the end of the array (2: also
 * before `version` and `issuedById`).
 */
async function storeWithoutIndex(client: Client, prefix: string, record: ApiKey, drop = 0): Promise<void> {
  const stored = encodeV1Record(drop === 2 ? { ...record, version: 1, issuedById: null } : record, { beforeVersions: drop === 2 });
  await client.sendCommand(['SET', `${prefix}hash:${record.keyHash}`, stored]);
  await client.sendCommand(['SET', `${prefix}id:${record.id}`, record.keyHash]);
  await client.sendCommand(['ZADD', `${prefix}owner:${record.ownerId}`, '0', ownerEntry(record.createdAt, record.id)]);
}

describe('RedisBackend listAll over a store written before the index across owners', () => {
  let client: Client;
  let namespace: string;

  beforeAll(async () => {
    client = await connectRedis();
    namespace = uniqueNamespace('redis-list-all');
  });
  afterAll(async () => {
    await deleteNamespace(client, namespace);
    await client.close();
  });

  it('backfills the index on the first listAll, and again on backfillListAllIndex() after a rolling upgrade', async () => {
    const writer = new RedisBackend(client, { namespace, pageSize: 2 });
    const prefix = writer.keyPrefix;
    const base = Date.now() - 60_000;
    const legacy = Array.from({ length: 5 }, (_, i) =>
      makeApiKeyRecord({ ownerId: `owner-${i % 2}`, createdAt: new Date(base + i * 1000), updatedAt: new Date(base) }),
    );
    for (const [i, record] of legacy.entries()) await storeWithoutIndex(client, prefix, record, i % 2 ? 2 : 0);
    const current = makeApiKeyRecord({ createdAt: new Date(base + 10_000) });
    await writer.create(current);

    // A process that has never listed across owners finds the store not backfilled.
    const reader = new RedisBackend(client, { namespace, pageSize: 2 });
    const listed = await collect(reader.listAll({ now: new Date() }));
    expect(listed.map((r) => r.id)).toEqual(newestFirst([...legacy, current]));
    expect(listed.find((r) => r.id === legacy[1]!.id)).toEqual({ ...legacy[1], disabledAt: null });
    expect(await client.sendCommand(['GET', `${prefix}all:indexed`])).toBe('1');

    // An instance still on the previous release writes one more key: not indexed yet...
    const late = makeApiKeyRecord({ createdAt: new Date(base + 20_000) });
    await storeWithoutIndex(client, prefix, late);
    expect((await collect(reader.listAll({ now: new Date() }))).map((r) => r.id)).not.toContain(late.id);
    // ...until the backfill runs again (idempotent: nothing else moves).
    await reader.backfillListAllIndex();
    expect((await collect(reader.listAll({ now: new Date() }))).map((r) => r.id)).toEqual(newestFirst([...legacy, current, late]));
  });

  it('keeps the previous layout for keys never disabled, so instances of the previous release still read them', async () => {
    const backend = new RedisBackend(client, { namespace });
    const record = makeApiKeyRecord();
    await backend.create(record);
    const stored = () => client.sendCommand(['GET', `${backend.keyPrefix}hash:${record.keyHash}`]).then((raw) => JSON.parse(String(raw)) as unknown[]);
    const layoutLength = (await stored()).length;
    await backend.update(record.id, { name: 'renamed', updatedAt: new Date() });
    expect((await stored()).length).toBe(layoutLength);
    const at = new Date(Math.floor(Date.now() / 1000) * 1000);
    await backend.update(record.id, { disabledAt: at, updatedAt: at });
    expect((await stored()).length).toBe(layoutLength + 1);
    expect((await backend.getByHash(record.keyHash))?.disabledAt).toEqual(at);
  });

  it('disables and enables a record of the original layout (before versions), filling the fields in', async () => {
    const backend = new RedisBackend(client, { namespace });
    const record = makeApiKeyRecord();
    await storeWithoutIndex(client, backend.keyPrefix, record, 2);
    const at = new Date(Math.floor(Date.now() / 1000) * 1000);
    const disabled = await backend.update(record.id, { disabledAt: at, updatedAt: at }, { expectedVersion: 1 });
    expect(disabled).toEqual({ ...record, disabledAt: at, updatedAt: at, version: 2 });
    const enabled = await backend.update(record.id, { disabledAt: null, updatedAt: at }, { expectedVersion: 2 });
    expect(enabled).toEqual({ ...record, updatedAt: at, version: 3 });
    expect(await backend.getByHash(record.keyHash)).toEqual(enabled);
  });
});
