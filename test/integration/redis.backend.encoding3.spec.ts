import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError, type ApiKey } from 'nestjs-api-auth';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { encodeV1Record } from '../fixtures/redis-record-v1.js';
import { encodeStoredRecord, ownerEntry } from '../../lib/redis/redis-record.codec.js';
import { V3_AT } from '../../lib/redis/redis-record.v3.js';
import { LOOK_UP_BY_HASH, type CallbackLookup } from '../../lib/verification/lookup-callbacks.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

const MAX_MS = 8_640_000_000_000_000;

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A record with every field set, in plain ASCII but for the hint's ellipsis and metadata. */
function fullRecord(overrides: Partial<ApiKey> = {}): ApiKey {
  const at = (offset: number) => new Date(1_700_000_000_123 + offset);
  return makeApiKeyRecord({
    name: 'deploy key',
    scopes: ['read', 'write:things'],
    metadata: { plan: 'pro', n: 0.1 + 0.2, big: 12345678901234567890, nested: { list: [1, 'two', null, []] }, order: { z: 1, a: 2 }, text: 'ünï ✓' },
    createdAt: at(0),
    updatedAt: at(1_000),
    expiresAt: at(86_400_000),
    lastUsedAt: at(2_000),
    rotatedFromId: 'previous-id',
    environment: 'live',
    policy: { rateLimits: [{ name: 'burst', limit: 5, windowMs: 1_000 }] },
    version: 3,
    issuedById: 'issuer-id',
    ...overrides,
  });
}

describe('RedisBackend with recordEncoding 3', () => {
  let client: Client;
  let namespace: string;
  let backend: RedisBackend;

  beforeAll(async () => {
    client = await connectRedis();
    namespace = uniqueNamespace('redis-encoding3');
    backend = new RedisBackend(client, { namespace, recordEncoding: 3 });
  });
  afterAll(async () => {
    await deleteNamespace(client, namespace);
    await client.close();
  });

  const key = (record: ApiKey) => `${backend.keyPrefix}hash:${record.keyHash}`;
  const raw = (record: ApiKey) => client.get(key(record));

  /** Files `record` with its indexes, its value stored as `stored`. */
  async function store(record: ApiKey, stored: string): Promise<void> {
    const prefix = backend.keyPrefix;
    await client.set(key(record), stored);
    await client.set(`${prefix}id:${record.id}`, record.keyHash);
    await client.zAdd(`${prefix}owner:${record.ownerId}`, { score: 0, value: ownerEntry(record.createdAt, record.id) });
    await client.zAdd(`${prefix}all`, { score: 0, value: ownerEntry(record.createdAt, record.id) });
    if (record.issuedById) await client.sAdd(`${prefix}issuer:${record.issuedById}`, record.id);
  }

  it('stores a new record in encoding 3, exactly as the codec writes it, and reads it back', async () => {
    const record = fullRecord();
    await backend.create(record);
    const stored = (await raw(record))!;
    expect(stored).toBe(encodeStoredRecord(record, 3));
    expect(stored.startsWith(`3${record.keyHash}[`)).toBe(true);
    expect(stored).toMatch(/^[\x00-\x7f]*$/);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    expect(await backend.getById(record.id)).toEqual(record);
    await backend.delete(record.id);
  });

  it('update and recordUsage write an encoding-3 record back digit for digit, every other field kept', async () => {
    // Text the scripts must write back in its JSON form (not plain ASCII, empty, quoted).
    const record = fullRecord({
      createdAt: new Date(-MAX_MS),
      updatedAt: new Date(-MAX_MS + 1),
      expiresAt: new Date(MAX_MS),
      lastUsedAt: null,
      environment: 'ü env\t1',
      rotatedFromId: '',
      issuedById: '"quoted',
      ownerId: 'owner ✓',
    });
    await backend.create(record);
    const updatedAt = new Date(MAX_MS - 1);
    const renamed = { ...record, name: 'renamed', scopes: [], updatedAt, version: record.version + 1 };
    expect(await backend.update(record.id, { name: 'renamed', scopes: [], updatedAt })).toEqual(renamed);
    expect(await raw(record)).toBe(encodeStoredRecord(renamed, 3));

    const usedAt = new Date(8_639_999_999_999_999);
    expect(await backend.recordUsage(record.id, usedAt, usedAt)).toBe(true);
    const used = { ...renamed, lastUsedAt: usedAt };
    expect(await raw(record)).toBe(encodeStoredRecord(used, 3));
    expect(await backend.getByHash(record.keyHash)).toEqual(used);

    // Every changeable field through the script once more: set, cleared, text that is not plain.
    const changes = {
      name: 'ü "q" \\ tab\t',
      scopes: ['a,b', '[x', 'ü'],
      metadata: { n: 1.0000000000000002, e: 1e21 },
      expiresAt: null,
      policy: null,
      revokedAt: new Date(1_750_000_000_000),
      disabledAt: new Date(-1),
      updatedAt,
    };
    const changed = { ...used, ...changes, version: used.version + 1 };
    expect(await backend.update(record.id, changes)).toEqual(changed);
    expect(await raw(record)).toBe(encodeStoredRecord(changed, 3));
    expect(await backend.getByHash(record.keyHash)).toEqual(changed);
    // cjson escapes '/' where JSON.stringify does not: the same value, other bytes.
    const slashed = { ...changed, name: 'a/ü', updatedAt, version: changed.version + 1 };
    expect(await backend.update(record.id, { name: 'a/ü', updatedAt })).toEqual(slashed);
    expect(await backend.getByHash(record.keyHash)).toEqual(slashed);
    expect(JSON.stringify((await backend.getById(record.id))!.metadata)).toBe(JSON.stringify(changes.metadata));
    await backend.delete(record.id);
  });

  it('reads encoding-1 and -2 records mixed with encoding-3 ones, and rewrites them in 3 at their next write', async () => {
    const ownerId = `owner-${Date.now()}`;
    const v1 = fullRecord({ ownerId, createdAt: new Date(1_700_000_000_100) });
    const v2 = fullRecord({ ownerId, createdAt: new Date(1_700_000_000_200), disabledAt: new Date(1_700_000_600_000) });
    const v3 = fullRecord({ ownerId, createdAt: new Date(1_700_000_000_300) });
    await store(v1, encodeV1Record(v1));
    await store(v2, encodeStoredRecord(v2, 2));
    await backend.create(v3);
    for (const record of [v1, v2, v3]) expect(await backend.getByHash(record.keyHash)).toEqual(record);
    expect(await collect(backend.listByOwner(ownerId))).toEqual([v1, v2, v3]);
    // Reading rewrites nothing.
    expect(await raw(v1)).toBe(encodeV1Record(v1));
    expect(await raw(v2)).toBe(encodeStoredRecord(v2, 2));

    const usedAt = new Date(1_700_000_200_000);
    expect(await backend.recordUsage(v1.id, usedAt, usedAt)).toBe(true);
    expect(await raw(v1)).toBe(encodeStoredRecord({ ...v1, lastUsedAt: usedAt }, 3));
    const updatedAt = new Date(1_700_000_300_000);
    await backend.update(v2.id, { name: 'renamed', updatedAt });
    const renamed = { ...v2, name: 'renamed', updatedAt, version: v2.version + 1 };
    expect(await raw(v2)).toBe(encodeStoredRecord(renamed, 3));
    expect(await backend.getByHash(v2.keyHash)).toEqual(renamed);
    for (const record of [v1, v2, v3]) await backend.delete(record.id);
  });

  it('with recordEncoding 1 keeps an encoding-3 record in 3; with 2 rewrites it in 2', async () => {
    const record = fullRecord();
    await backend.create(record);
    const usedAt = new Date(1_700_000_200_000);
    await new RedisBackend(client, { namespace, recordEncoding: 1 }).recordUsage(record.id, usedAt, usedAt);
    const used = { ...record, lastUsedAt: usedAt };
    expect(await raw(record)).toBe(encodeStoredRecord(used, 3));
    const updatedAt = new Date(1_700_000_300_000);
    await new RedisBackend(client, { namespace, recordEncoding: 2 }).update(record.id, { name: 'back', updatedAt });
    const renamed = { ...used, name: 'back', updatedAt, version: used.version + 1 };
    // In encoding 2 the scripts keep metadata's JSON text as encoding 3 stored it (escaped): the same value.
    expect(await raw(record)).toMatch(/^\[2,/);
    expect(await backend.getByHash(record.keyHash)).toEqual(renamed);
    await backend.delete(record.id);
  });

  it('derives each owner entry in the scripts exactly as the codec does, at both ends of the Date range', async () => {
    const ownerId = `owner-far-${Date.now()}`;
    const times = [-MAX_MS, -MAX_MS + 1, -100_000_001, -100_000_000, -99_999_999, -1, 0, 1, 99_999_999, 100_000_000, 1_700_000_000_123, MAX_MS - 1, MAX_MS];
    const records = times.map((ms) => fullRecord({ ownerId, createdAt: new Date(ms), updatedAt: new Date(ms), lastUsedAt: null }));
    for (const record of records) await backend.create(record);
    // The listing script keeps a record only when the entry it derives is the one in the set.
    expect((await collect(backend.listByOwner(ownerId))).map((r) => r.id)).toEqual(records.map((r) => r.id));
    expect((await collect(backend.listByOwner(ownerId, { after: records[5]!, limit: 3 }))).map((r) => r.id)).toEqual(records.slice(6, 9).map((r) => r.id));
    // The scripts write each of these dates back digit for digit.
    for (const record of records) {
      expect(await backend.recordUsage(record.id, record.createdAt, record.createdAt)).toBe(true);
      expect(await raw(record)).toBe(encodeStoredRecord({ ...record, lastUsedAt: record.createdAt }, 3));
    }
    // Delete removes the entry it derives: nothing is left in the owner's set.
    for (const record of records) await backend.delete(record.id);
    expect(await client.zCard(`${backend.keyPrefix}owner:${ownerId}`)).toBe(0);
  });

  it('keeps values a newer release appended when it rewrites the record', async () => {
    const record = fullRecord();
    await backend.create(record);
    const stored = (await raw(record))!;
    const head = stored.slice(0, stored.indexOf('['));
    const values = JSON.parse(stored.slice(head.length)) as unknown[];
    await client.set(key(record), `${head}${JSON.stringify([...values, 1_800_000_000_000, null, 'later "x"'])}`);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    const updatedAt = new Date(1_700_000_300_000);
    await backend.update(record.id, { name: 'renamed', updatedAt });
    const rewritten = (await raw(record))!;
    expect((JSON.parse(rewritten.slice(head.length)) as unknown[]).slice(values.length)).toEqual([1_800_000_000_000, null, 'later "x"']);
    expect(await backend.getByHash(record.keyHash)).toEqual({ ...record, name: 'renamed', updatedAt, version: record.version + 1 });
    await backend.delete(record.id);
  });

  it('answers BackendUnavailableError for a corrupt or foreign value, by verification and by the scripts alike', async () => {
    const record = fullRecord();
    await backend.create(record);
    const stored = (await raw(record))!;
    const head = stored.slice(0, stored.indexOf('['));
    const values = JSON.parse(stored.slice(head.length)) as unknown[];
    const replace = (at: number, value: unknown) => `${head}${JSON.stringify(values.map((v, i) => (i === at ? value : v)))}`;
    const corrupt = [
      replace(V3_AT.createdAt, 'x'),
      replace(V3_AT.version, null),
      replace(V3_AT.id, null),
      `${head}${JSON.stringify(values.slice(0, 5))}`,
      `${head}{"not":"an array"}`,
      `3${record.keyHash}`,
      'not a record',
    ];
    for (const value of corrupt) {
      await client.set(key(record), value);
      const reads = [() => backend.getByHash(record.keyHash), () => backend.getById(record.id)];
      for (const read of reads) {
        const error = await read().catch((e: unknown) => e);
        expect(error, value).toBeInstanceOf(BackendUnavailableError);
        expect((error as Error).message).not.toContain(record.keyHash);
      }
    }
    // A record of another hash under this key: no key, never another key's record.
    const foreign = fullRecord();
    for (const encoding of [1, 2, 3] as const) {
      await client.set(key(record), encodeStoredRecord(foreign, encoding));
      expect(await backend.getByHash(record.keyHash)).toBeNull();
      // The verifier's lookup, which trusts the backend's comparison of the hash.
      expect(await new Promise((resolve, reject) => (backend as unknown as CallbackLookup)[LOOK_UP_BY_HASH](record.keyHash, resolve, reject))).toBeNull();
    }
    // The scripts refuse what they cannot read, and write nothing over it.
    for (const value of [replace(V3_AT.createdAt, 'x'), replace(V3_AT.id, null), `3${record.keyHash}`]) {
      await client.set(key(record), value);
      const updatedAt = new Date(1_700_000_300_000);
      await expect(backend.update(record.id, { name: 'x', updatedAt })).rejects.toBeInstanceOf(BackendUnavailableError);
      await expect(backend.recordUsage(record.id, updatedAt, updatedAt)).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(await raw(record)).toBe(value);
    }
    await client.set(key(record), stored);
    await backend.delete(record.id);
  });
});
