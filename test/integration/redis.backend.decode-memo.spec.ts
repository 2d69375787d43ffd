import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiKeyService } from 'nestjs-api-auth';
import { RedisBackend, type RedisBackendOptions } from 'nestjs-api-auth/redis';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { encodeStoredRecord } from '../../lib/redis/redis-record.codec.js';
import { LOOK_UP_BY_HASH, type CallbackLookup } from '../../lib/verification/lookup-callbacks.js';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import type { ApiKey, ApiKeyView } from 'nestjs-api-auth';
import type { RecordMemo } from '../../lib/redis/redis-record.memo.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

/**
 * RedisBackend's decode memo (option `decodeCacheSize`): every verification still reads
 * Redis, and bytes decoded before answer with the same frozen record and view. Whether a
 * verification decoded is told by identity: a memo hit hands out the very view object
 * of the previous verification, a decode a new one.
 */
describe('RedisBackend decode memo', () => {
  let client: Client;
  let namespace: string;

  beforeAll(async () => {
    client = await connectRedis();
    namespace = uniqueNamespace('redis-decode-memo');
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    await deleteNamespace(client, namespace);
    await client.close();
  });

  /** A service verifying through its own backend, and another writing through another (as another instance would). */
  function instances(options: RedisBackendOptions = {}) {
    const opts = { namespace, recordEncoding: 3 as const, ...options };
    const reader = new RedisBackend(client, opts);
    const writer = new RedisBackend(client, opts);
    const make = (backend: RedisBackend) => new ApiKeyService(resolveApiAuthOptions({ prefix: 'memo_', backend, trackUsage: false }));
    return { reader, writer, verifier: make(reader), admin: make(writer) };
  }

  const memoOf = (backend: RedisBackend) => (backend as unknown as { memo: RecordMemo | null }).memo;
  const recordKey = (backend: RedisBackend, keyHash: string) => `${backend.keyPrefix}hash:${keyHash}`;

  it('answers the same bytes with the same frozen view, and a consumer cannot change it', async () => {
    const { verifier, admin } = instances();
    const { key } = await admin.issue({ ownerId: 'o', name: 'memo', scopes: ['read'], metadata: { plan: 'pro', nested: { n: 1 } }, expiresAt: new Date(Date.now() + 3_600_000) });
    const first = (await verifier.verify(key))!;
    const second = (await verifier.verify(key))!;
    expect(second).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.scopes)).toBe(true);
    expect(Object.isFrozen(first.metadata)).toBe(true);
    expect(Object.isFrozen(first.metadata.nested)).toBe(true);
    expect('keyHash' in first).toBe(false);

    // A consumer of `request.apiKey` trying to change it, every way it can.
    const view = first as unknown as { scopes: string[]; metadata: Record<string, unknown>; ownerId: string; expiresAt: Date; createdAt: Date };
    const expiresAt = view.expiresAt.getTime();
    expect(() => view.scopes.push('admin')).toThrow(TypeError);
    expect(() => (view.metadata.plan = 'enterprise')).toThrow(TypeError);
    expect(() => (view.ownerId = 'someone-else')).toThrow(TypeError);
    expect(() => view.expiresAt.setTime(Date.now() + 10 * 365 * 86_400_000)).toThrow(TypeError);
    expect(() => view.createdAt.setFullYear(2000)).toThrow(TypeError);
    expect(view.expiresAt).toBeInstanceOf(Date);
    expect(JSON.parse(JSON.stringify(first)).expiresAt).toBe(new Date(expiresAt).toISOString());

    const third = (await verifier.verify(key))!;
    expect(third.scopes).toEqual(['read']);
    expect(third.metadata).toEqual({ plan: 'pro', nested: { n: 1 } });
    expect(third.ownerId).toBe('o');
    expect(third.expiresAt!.getTime()).toBe(expiresAt);
  });

  it('sees a revoke, a disable, a scope change and an expiry written by another instance on the very next verification', async () => {
    const { writer, verifier, admin } = instances();
    const issued = await Promise.all([1, 2, 3, 4].map((n) => admin.issue({ ownerId: 'o', name: `k${n}`, scopes: ['read'] })));
    // Two verifications each: the second is a memo hit.
    for (const { key } of issued) {
      const view = await verifier.verify(key);
      expect(await verifier.verify(key)).toBe(view);
    }
    const [revoked, disabled, rescoped, expired] = issued as [(typeof issued)[0], (typeof issued)[0], (typeof issued)[0], (typeof issued)[0]];
    await admin.revoke(revoked.apiKey.id);
    await admin.disable(disabled.apiKey.id);
    await admin.update(rescoped.apiKey.id, { scopes: ['write'] });
    // Past expiries are refused by the service's validation: written as another writer would.
    await writer.update(expired.apiKey.id, { expiresAt: new Date(Date.now() - 1_000), updatedAt: new Date() });

    expect(await verifier.authenticate(revoked.key)).toMatchObject({ ok: false, code: 'revoked_api_key' });
    expect(await verifier.authenticate(disabled.key)).toMatchObject({ ok: false, code: 'disabled_api_key' });
    expect((await verifier.verify(rescoped.key))!.scopes).toEqual(['write']);
    expect(await verifier.authenticate(expired.key)).toMatchObject({ ok: false, code: 'expired_api_key' });
  });

  it('sees a raw write by another writer (new bytes) on the next verification, and refuses a foreign record under a hash', async () => {
    const { reader, writer, verifier, admin } = instances();
    const a = await admin.issue({ ownerId: 'o', name: 'a', scopes: ['read'] });
    const b = await admin.issue({ ownerId: 'o', name: 'b', scopes: ['read'] });
    const recordA = (await writer.getById(a.apiKey.id))!;
    const recordB = (await writer.getById(b.apiKey.id))!;
    // Both memoized.
    await verifier.verify(a.key);
    const viewB = await verifier.verify(b.key);
    expect(await verifier.verify(b.key)).toBe(viewB);

    // Another writer rewrites A's bytes: revoked.
    await client.set(recordKey(reader, recordA.keyHash), encodeStoredRecord({ ...recordA, revokedAt: new Date(), version: recordA.version + 1 }, 3));
    expect(await verifier.authenticate(a.key)).toMatchObject({ ok: false, code: 'revoked_api_key' });

    // B's own bytes, in every encoding, under A's hash: never A's answer.
    for (const encoding of [3, 2, 1] as const) {
      await client.set(recordKey(reader, recordA.keyHash), encodeStoredRecord(recordB, encoding));
      expect(await verifier.authenticate(a.key)).toMatchObject({ ok: false, code: 'invalid_api_key' });
      expect(await verifier.authenticate(a.key)).toMatchObject({ ok: false, code: 'invalid_api_key' });
    }
    // The very bytes B's entry was decoded from, under A's hash: still no.
    await client.set(recordKey(reader, recordA.keyHash), (await client.get(recordKey(reader, recordB.keyHash)))!);
    expect(await verifier.authenticate(a.key)).toMatchObject({ ok: false, code: 'invalid_api_key' });
    // B is unaffected.
    expect(await verifier.verify(b.key)).toBe(viewB);
  });

  it('judges expiry per request: a memo hit past its expiresAt is refused', async () => {
    const { verifier, admin } = instances();
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = new Date('2030-01-01T00:00:00Z');
    vi.setSystemTime(start);
    const { key } = await admin.issue({ ownerId: 'o', name: 'short', expiresAt: new Date(start.getTime() + 60_000) });
    const view = await verifier.verify(key);
    expect(view).not.toBeNull();
    vi.setSystemTime(start.getTime() + 59_999);
    expect(await verifier.verify(key)).toBe(view);
    vi.setSystemTime(start.getTime() + 60_000);
    expect(await verifier.authenticate(key)).toMatchObject({ ok: false, code: 'expired_api_key' });
  });

  it('replaces the entry of a hash whose bytes changed, and keeps getByHash answers unshared', async () => {
    const { reader, writer, verifier, admin } = instances();
    const { key, apiKey } = await admin.issue({ ownerId: 'o', name: 'used' });
    const before = await verifier.verify(key);
    // A usage write changes the bytes: a miss, then a hit on the new bytes.
    await writer.recordUsage(apiKey.id, new Date(), new Date(0));
    const after = (await verifier.verify(key))!;
    expect(after).not.toBe(before);
    expect(after.lastUsedAt).not.toBeNull();
    expect(await verifier.verify(key)).toBe(after);
    expect(memoOf(reader)!.size).toBe(1);

    const keyHash = (await writer.getById(apiKey.id))!.keyHash;
    const one = (await reader.getByHash(keyHash))!;
    const two = (await reader.getByHash(keyHash))!;
    expect(one).not.toBe(two);
    expect(Object.isFrozen(one)).toBe(false);
    one.scopes.push('mine');
    expect((await reader.getByHash(keyHash))!.scopes).toEqual([]);
    expect((await verifier.verify(key))!.scopes).toEqual([]);
  });

  it('holds at most decodeCacheSize hashes, the oldest going first', async () => {
    const { reader, verifier, admin } = instances({ decodeCacheSize: 2 });
    const keys = await Promise.all([1, 2, 3].map((n) => admin.issue({ ownerId: 'o', name: `bound${n}` })));
    const views = [];
    for (const { key } of keys) views.push(await verifier.verify(key));
    expect(memoOf(reader)!.size).toBe(2);
    // The third and second are held, the first was evicted: decoded again.
    expect(await verifier.verify(keys[2]!.key)).toBe(views[2]);
    expect(await verifier.verify(keys[1]!.key)).toBe(views[1]);
    const again = await verifier.verify(keys[0]!.key);
    expect(again).not.toBe(views[0]);
    expect(again).toEqual(views[0]);
    expect(memoOf(reader)!.size).toBe(2);
  });

  it('decodes every verification with decodeCacheSize 0, handing out views of its own', async () => {
    const { reader, verifier, admin } = instances({ decodeCacheSize: 0 });
    expect(memoOf(reader)).toBeNull();
    const { key } = await admin.issue({ ownerId: 'o', name: 'nomemo', scopes: ['read'] });
    const views = [];
    for (let i = 0; i < 3; i++) views.push((await verifier.verify(key))!);
    expect(new Set(views).size).toBe(3);
    expect(Object.isFrozen(views[0])).toBe(false);
    expect(views[1]).toEqual(views[0]);
  });

  it('drops the entry of a hash whose record is gone', async () => {
    const { reader, verifier, admin } = instances();
    const { key, apiKey } = await admin.issue({ ownerId: 'o', name: 'gone' });
    await verifier.verify(key);
    expect(memoOf(reader)!.size).toBe(1);
    await admin.delete(apiKey.id);
    expect(await verifier.verify(key)).toBeNull();
    expect(memoOf(reader)!.size).toBe(0);
  });

  it('never answers a hash with the entry of another hash that shares its slot, even for that entry\'s very bytes', async () => {
    const { reader, writer } = instances();
    // The memo files entries by the first characters of the hash: these two share them.
    const x = makeApiKeyRecord({ keyHash: `abcdef01${'1'.repeat(56)}`, scopes: ['x'] });
    const y = makeApiKeyRecord({ keyHash: `abcdef01${'2'.repeat(56)}`, scopes: ['y'] });
    await writer.create(x);
    await writer.create(y);
    const lookUp = (keyHash: string) =>
      new Promise<{ record: Readonly<ApiKey> | null; view?: Readonly<ApiKeyView> }>((resolve, reject) =>
        (reader as unknown as CallbackLookup)[LOOK_UP_BY_HASH](keyHash, (record, view) => resolve({ record, view }), reject),
      );
    expect((await lookUp(x.keyHash)).record!.scopes).toEqual(['x']);
    const first = await lookUp(y.keyHash);
    expect(first.record!.scopes).toEqual(['y']);
    expect((await lookUp(y.keyHash)).view).toBe(first.view);
    // Y's exact bytes under X's key: the entry found is Y's, with these very bytes.
    await client.set(recordKey(reader, x.keyHash), (await client.get(recordKey(reader, y.keyHash)))!);
    expect((await lookUp(x.keyHash)).record).toBeNull();
    expect((await lookUp(x.keyHash)).record).toBeNull();
  });

  it('validates decodeCacheSize', () => {
    for (const bad of [-1, 100_001, 1.5, '10', Number.NaN]) {
      expect(() => new RedisBackend(client, { decodeCacheSize: bad as number })).toThrow(/option "decodeCacheSize" must be an integer from 0 to 100000/);
    }
    expect(() => new RedisBackend(client, { decodeCacheSize: 100_000 })).not.toThrow();
  });
});
