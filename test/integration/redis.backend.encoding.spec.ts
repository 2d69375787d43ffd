import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError, VersionConflictError, type ApiKey } from 'nestjs-api-auth';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';
import { encodeV1Record } from '../fixtures/redis-record-v1.js';
import { ownerEntry } from '../../lib/redis/redis-record.codec.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A record with every field set, as the previous release could have stored it. */
function fullRecord(overrides: Partial<ApiKey> = {}): ApiKey {
  const at = (offset: number) => new Date(1_700_000_000_123 + offset);
  return makeApiKeyRecord({
    name: 'café … 😀',
    scopes: ['read', 'write:things'],
    metadata: { plan: 'pro', nested: { n: 1.5, list: [1, 'two', null, []] }, empty: {}, order: { z: 1, a: 2 } },
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

describe('RedisBackend with recordEncoding 2: records of the previous release next to new ones', () => {
  let client: Client;
  let namespace: string;
  let backend: RedisBackend;

  beforeAll(async () => {
    client = await connectRedis();
    namespace = uniqueNamespace('redis-encoding');
    backend = new RedisBackend(client, { namespace, recordEncoding: 2 });
  });
  afterAll(async () => {
    await deleteNamespace(client, namespace);
    await client.close();
  });

  const raw = (record: ApiKey) => client.get(`${backend.keyPrefix}hash:${record.keyHash}`);

  /** Files `record` with its indexes exactly as the previous release did (encoding 1). */
  async function storeV1(record: ApiKey, options?: { beforeVersions?: boolean }): Promise<void> {
    const prefix = backend.keyPrefix;
    await client.set(`${prefix}hash:${record.keyHash}`, encodeV1Record(record, options));
    await client.set(`${prefix}id:${record.id}`, record.keyHash);
    await client.zAdd(`${prefix}owner:${record.ownerId}`, { score: 0, value: ownerEntry(record.createdAt, record.id) });
    if (record.issuedById) await client.sAdd(`${prefix}issuer:${record.issuedById}`, record.id);
  }

  it('stores a new record in encoding 2: a leading 2, dates as numbers, scopes as an array, ASCII', async () => {
    const record = fullRecord();
    await backend.create(record);
    const stored = (await raw(record))!;
    expect(stored).toMatch(/^\[2,/);
    expect(stored).toMatch(/^[\x00-\x7f]*$/);
    const values = JSON.parse(stored) as unknown[];
    expect(values).toContainEqual(['read', 'write:things']);
    expect(values).toContain(record.createdAt.getTime());
    expect(values).toContain(record.expiresAt!.getTime());
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    await backend.delete(record.id);
  });

  it('reads encoding-1 records with every kind of value, mixed with encoding-2 ones of the same owner and issuer', async () => {
    const ownerId = `owner-${Date.now()}`;
    const old = [
      fullRecord({ ownerId }),
      fullRecord({ ownerId, scopes: [], metadata: {}, policy: null, expiresAt: null, lastUsedAt: null, rotatedFromId: null, environment: null, version: 1 }),
      fullRecord({ ownerId, revokedAt: new Date(1_700_000_500_000), createdAt: new Date(1_700_000_000_500) }),
      fullRecord({ ownerId, disabledAt: new Date(1_700_000_600_000), createdAt: new Date(1_700_000_000_700) }),
    ];
    const fresh = [
      fullRecord({ ownerId, createdAt: new Date(1_700_000_000_200) }),
      fullRecord({ ownerId, createdAt: new Date(1_700_000_000_900), disabledAt: new Date(1_700_000_700_000) }),
    ];
    for (const record of old) await storeV1(record);
    for (const record of fresh) await backend.create(record);
    for (const record of [...old, ...fresh]) {
      expect(await backend.getByHash(record.keyHash)).toEqual(record);
      expect(await backend.getById(record.id)).toEqual(record);
    }
    const inOrder = [...old, ...fresh].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1));
    expect(await collect(backend.listByOwner(ownerId))).toEqual(inOrder);
    expect(new Set((await collect(backend.listByIssuer('issuer-id'))).map((r) => r.id))).toEqual(new Set(inOrder.map((r) => r.id)));
    // Reading rewrites nothing.
    for (const record of old) expect(await raw(record)).toBe(encodeV1Record(record));
    for (const record of [...old, ...fresh]) await backend.delete(record.id);
  });

  it('update and recordUsage rewrite an encoding-1 record in encoding 2, every other field kept', async () => {
    const renamed = fullRecord();
    await storeV1(renamed);
    const updatedAt = new Date(1_700_000_100_000);
    const expected = { ...renamed, name: 'renamed ✓', scopes: [], updatedAt, version: 4 };
    expect(await backend.update(renamed.id, { name: 'renamed ✓', scopes: [], updatedAt })).toEqual(expected);
    expect(await raw(renamed)).toMatch(/^\[2,/);
    expect(await backend.getByHash(renamed.keyHash)).toEqual(expected);

    const used = fullRecord();
    await storeV1(used);
    const usedAt = new Date(1_700_000_200_000);
    expect(await backend.recordUsage(used.id, usedAt, usedAt)).toBe(true);
    expect(await raw(used)).toMatch(/^\[2,/);
    expect(await backend.getByHash(used.keyHash)).toEqual({ ...used, lastUsedAt: usedAt });
    // lastUsedAt never moves backwards, in either encoding.
    expect(await backend.recordUsage(used.id, new Date(1_700_000_000_000), new Date(1_700_000_000_000))).toBe(false);

    // A record from before versions existed: version 1, no issuer, and so after its rewrite.
    const { version: _v, issuedById: _i, ...unversioned } = fullRecord();
    const legacy: ApiKey = { ...unversioned, version: 1, issuedById: null };
    await storeV1(legacy, { beforeVersions: true });
    expect(await backend.recordUsage(legacy.id, usedAt, usedAt)).toBe(true);
    expect(await backend.getByHash(legacy.keyHash)).toEqual({ ...legacy, lastUsedAt: usedAt });

    for (const record of [renamed, used, legacy]) await backend.delete(record.id);
  });

  it('keeps revocation sticky, versions checked and deletes complete on encoding-1 records', async () => {
    const revoked = fullRecord({ revokedAt: new Date(1_700_000_300_000) });
    await storeV1(revoked);
    const later = new Date(1_700_000_400_000);
    const updated = await backend.update(revoked.id, { revokedAt: later, name: 'still revoked', updatedAt: later });
    expect(updated.revokedAt).toEqual(revoked.revokedAt);
    expect(updated.name).toBe('still revoked');

    const versioned = fullRecord({ version: 7 });
    await storeV1(versioned);
    const conflict = await backend.update(versioned.id, { name: 'x', updatedAt: later }, { expectedVersion: 6 }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(VersionConflictError);
    expect(await raw(versioned)).toBe(encodeV1Record(versioned));
    expect((await backend.update(versioned.id, { name: 'x', updatedAt: later }, { expectedVersion: 7 })).version).toBe(8);

    const deleted = fullRecord();
    await storeV1(deleted);
    await backend.delete(deleted.id);
    expect(await backend.getById(deleted.id)).toBeNull();
    expect(await scanKeys(client, `${backend.keyPrefix}id:${deleted.id}`)).toEqual([]);
    expect(await scanKeys(client, `${backend.keyPrefix}hash:${deleted.keyHash}`)).toEqual([]);
    expect(await client.zCard(`${backend.keyPrefix}owner:${deleted.ownerId}`)).toBe(0);
    expect(await client.sIsMember(`${backend.keyPrefix}issuer:issuer-id`, deleted.id)).toBe(0);
    for (const record of [revoked, versioned]) await backend.delete(record.id);
  });

  it('keeps every digit of far dates and the shape of empty scopes and metadata through the scripts', async () => {
    // Past the 14 significant digits cjson.encode keeps, both ends of the Date range.
    const record = fullRecord({
      createdAt: new Date(-8_640_000_000_000_000),
      updatedAt: new Date(-8_639_999_999_999_999),
      expiresAt: new Date(8_640_000_000_000_000),
      lastUsedAt: new Date(253_402_300_799_999),
      scopes: [],
      metadata: {},
    });
    await backend.create(record);
    const renamed = await backend.update(record.id, { name: 'far', updatedAt: record.updatedAt });
    expect(renamed).toEqual({ ...record, name: 'far', version: record.version + 1 });
    await backend.recordUsage(record.id, new Date(8_639_999_999_999_999), new Date(8_639_999_999_999_999));
    const stored = await backend.getByHash(record.keyHash);
    expect(stored).toEqual({ ...record, name: 'far', version: record.version + 1, lastUsedAt: new Date(8_639_999_999_999_999) });
    expect(Array.isArray(stored!.scopes)).toBe(true);
    await backend.delete(record.id);
  });

  it('keeps values a newer release appended to the array when it rewrites the record', async () => {
    const record = fullRecord();
    await backend.create(record);
    const key = `${backend.keyPrefix}hash:${record.keyHash}`;
    const values = JSON.parse((await client.get(key))!) as unknown[];
    await client.set(key, JSON.stringify([...values, 1_800_000_000_000, null, 'later']));
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    await backend.update(record.id, { name: 'renamed', updatedAt: record.updatedAt });
    expect((JSON.parse((await client.get(key))!) as unknown[]).slice(values.length)).toEqual([1_800_000_000_000, null, 'later']);
    await backend.delete(record.id);
  });

  it('with the default recordEncoding 1, writes what the previous release reads, and keeps each record in its encoding', async () => {
    const compatible = new RedisBackend(client, { namespace });
    const fresh = fullRecord({ disabledAt: null });
    await compatible.create(fresh);
    // What the previous release's encoder writes: a key never disabled without its disabledAt.
    expect(await raw(fresh)).toBe(encodeV1Record(fresh));
    const usedAt = new Date(1_700_000_200_000);
    await compatible.recordUsage(fresh.id, usedAt, usedAt);
    const renamed = await compatible.update(fresh.id, { name: 'renamed', updatedAt: usedAt });
    expect(renamed).toEqual({ ...fresh, name: 'renamed', updatedAt: usedAt, lastUsedAt: usedAt, version: fresh.version + 1 });
    expect(await raw(fresh)).toBe(encodeV1Record(renamed));
    const disabled = await compatible.update(fresh.id, { disabledAt: usedAt, updatedAt: usedAt });
    expect(await raw(fresh)).toBe(encodeV1Record(disabled));

    // A record another instance stored in encoding 2 stays in 2.
    const newer = fullRecord();
    await backend.create(newer);
    await compatible.recordUsage(newer.id, usedAt, usedAt);
    await compatible.update(newer.id, { name: 'renamed', updatedAt: usedAt });
    expect(await raw(newer)).toMatch(/^\[2,/);
    expect(await compatible.getByHash(newer.keyHash)).toEqual({ ...newer, name: 'renamed', updatedAt: usedAt, lastUsedAt: usedAt, version: newer.version + 1 });
    for (const record of [fresh, newer]) await compatible.delete(record.id);
  });

  it('answers BackendUnavailableError for an encoding it does not know or a malformed encoding-2 array', async () => {
    const record = fullRecord();
    await backend.create(record);
    const key = `${backend.keyPrefix}hash:${record.keyHash}`;
    const values = JSON.parse((await client.get(key))!) as unknown[];
    const at = values.indexOf(record.createdAt.getTime());
    const malformed = [
      [3, ...values.slice(1)],
      values.map((v, i) => (i === at ? String(v) : v)),
      values.map((v) => (Array.isArray(v) ? JSON.stringify(v) : v)),
      values.map((v, i) => (i === values.indexOf(record.id) ? null : v)),
    ];
    for (const value of malformed) {
      await client.set(key, JSON.stringify(value));
      for (const read of [() => backend.getByHash(record.keyHash), () => backend.getById(record.id)]) {
        const error = await read().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error as Error).message).toMatch(/cannot read/);
        expect((error as Error).message).not.toContain(record.keyHash);
      }
    }
    await client.set(key, JSON.stringify(values));
    await backend.delete(record.id);
  });
});
