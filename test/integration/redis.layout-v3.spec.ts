import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend, type RedisBackendOptions } from 'nestjs-api-auth/redis';
import { REDIS_LAYOUT_TEST_HOOKS, type RedisLayoutTestHooks } from '../../lib/redis/layout/redis-layout.v3.hooks.js';
import { makeApiKeyRecord, runBackendConformance } from 'nestjs-api-auth/testing';
import { storeLegacyRecordV3 } from '../fixtures/redis-layout-v3.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;
const runner = { describe, it, beforeAll, afterAll };

async function isolated(label: string, options: ConstructorParameters<typeof RedisBackend>[1] = {}, clientOptions: Parameters<typeof connectRedis>[0] = {}) {
  const client = await connectRedis(clientOptions);
  const namespace = uniqueNamespace(label);
  const backend = new RedisBackend(client, { ...options, namespace, layout: 3 });
  return {
    client,
    namespace,
    backend,
    done: async () => {
      await deleteNamespace(client, namespace);
      await client.close();
    },
  };
}

for (const [label, options, clientOptions] of [
  ['RedisBackend layout 3', {}, {}],
  ['RedisBackend layout 3 (pageSize 2, expireRecords)', { pageSize: 2, expireRecords: true }, {}],
  ['RedisBackend layout 3 (RESP3 client)', {}, { RESP: 3 }],
  ['RedisBackend layout 3 (recordEncoding 2)', { recordEncoding: 2 }, {}],
  ['RedisBackend layout 3 (recordEncoding 3)', { recordEncoding: 3 }, {}],
] as const) {
  let env: Awaited<ReturnType<typeof isolated>>;
  runBackendConformance(label, runner, {
    create: async () => (env = await isolated('redis-v3', options, clientOptions)).backend,
    destroy: () => env.done(),
    storeLegacyRecord: (backend, record) => storeLegacyRecordV3(env.client, backend.keyPrefix, record),
  });
}

describe('RedisBackend layout 3 keys', () => {
  let client: Client;
  beforeAll(async () => {
    client = await connectRedis();
  });
  afterAll(async () => {
    await client.close();
  });

  it('keeps its keys under <namespace>v3: and leaves none behind after delete', async () => {
    const namespace = uniqueNamespace('redis-v3-keys');
    const backend = new RedisBackend(client, { namespace, layout: 3 });
    expect(backend.keyPrefix).toBe(`${namespace}v3:`);
    expect(backend.layoutVersion).toBe(3);
    try {
      const records = Array.from({ length: 6 }, (_, i) =>
        makeApiKeyRecord({ ownerId: `o${i % 2}`, issuedById: i % 3 ? null : 'issuer', expiresAt: new Date(Date.now() + 3_600_000) }),
      );
      await Promise.all(records.map((r) => backend.create(r)));
      await backend.update(records[0]!.id, { revokedAt: new Date(), updatedAt: new Date() });
      const keys = await scanKeys(client, namespace);
      expect(keys.every((k) => k.startsWith(`${namespace}v3:`))).toBe(true);
      await Promise.all(records.map((r) => backend.delete(r.id)));
      // The purge index's version hashes are gone with their last entry.
      expect(await scanKeys(client, namespace)).toEqual([]);
    } finally {
      await deleteNamespace(client, namespace);
    }
  });

  it('rebuildPurgeIndex files every record again from the index across owners; purge then reaches them', async () => {
    const namespace = uniqueNamespace('redis-v3-rebuild');
    const backend = new RedisBackend(client, { namespace, layout: 3, pageSize: 3 });
    try {
      const expired = Array.from({ length: 7 }, () => makeApiKeyRecord({ expiresAt: new Date(Date.now() - 60_000) }));
      const live = makeApiKeyRecord({ expiresAt: new Date(Date.now() + 3_600_000) });
      await Promise.all([...expired, live].map((r) => backend.create(r)));
      await client.sendCommand(['DEL', `${backend.keyPrefix}{expiring}`, `${backend.keyPrefix}{expiring}:v`]);
      expect(await backend.purge({ expiredBefore: new Date(), limit: 100 })).toBe(0);
      expect(await backend.rebuildPurgeIndex()).toBe(8);
      expect(await backend.rebuildPurgeIndex()).toBe(8);
      expect(await backend.purge({ expiredBefore: new Date(), limit: 100 })).toBe(7);
      expect(await backend.getById(live.id)).toEqual(live);
    } finally {
      await deleteNamespace(client, namespace);
    }
  });

  it('refuses a namespace with a brace, and a bad layout, by name', () => {
    expect(() => new RedisBackend(client, { namespace: '{api-auth}:', layout: 3 })).toThrow(/layout 3 the option "namespace" must not contain/);
    expect(() => new RedisBackend(client, { layout: 4 as 3 })).toThrow(/option "layout" must be 2 or 3/);
    expect(new RedisBackend(client).layoutVersion).toBe(2);
  });
});

describe('RedisBackend layout 3 under racing writes, over two connections', () => {
  let env: Awaited<ReturnType<typeof isolated>>;
  let second: Client;
  beforeAll(async () => {
    env = await isolated('redis-v3-race');
    second = await connectRedis();
  });
  afterAll(async () => {
    await env.done();
    await second.close();
  });

  it('never loses a revoke that races a move of the key hash (replaceHash), 30 rounds', async () => {
    const other = new RedisBackend(second, { namespace: env.namespace, layout: 3 });
    for (let round = 0; round < 30; round++) {
      const record = makeApiKeyRecord();
      await env.backend.create(record);
      const toHash = makeApiKeyRecord().keyHash;
      const revokedAt = new Date();
      const usage = Array.from({ length: 10 }, (_, i) => other.recordUsage(record.id, new Date(Date.now() + i), new Date(Date.now() + i)));
      const [moved] = await Promise.all([
        env.backend.replaceHash(record.id, record.keyHash, toHash),
        ...usage.slice(0, 5),
        other.update(record.id, { revokedAt, updatedAt: revokedAt }),
        ...usage.slice(5),
      ]);
      expect(moved, `round ${round}`).toBe(true);
      expect(await env.backend.getByHash(record.keyHash), `round ${round}`).toBeNull();
      const stored = await env.backend.getByHash(toHash);
      expect(stored?.revokedAt, `round ${round}`).toEqual(revokedAt);
      expect(stored?.version).toBe(2);
      expect(await env.backend.getById(record.id)).toEqual(stored);
    }
  });

  it('sends a revoke that read the pointer before a move began, and lands after the freeze, to finish the move first', async () => {
    const record = makeApiKeyRecord();
    await env.backend.create(record);
    const toHash = makeApiKeyRecord().keyHash;
    let readPointer!: () => void;
    const pointerRead = new Promise<void>((resolve) => (readPointer = resolve));
    let frozen!: () => void;
    const afterFreeze = new Promise<void>((resolve) => (frozen = resolve));
    const updaterHooks: RedisLayoutTestHooks = {
      afterStep: async (operation, step) => {
        if (operation === 'update' && step === 1) {
          readPointer();
          await afterFreeze;
        }
      },
    };
    const updater = new RedisBackend(second, { namespace: env.namespace, layout: 3, [REDIS_LAYOUT_TEST_HOOKS]: updaterHooks } as RedisBackendOptions);
    const revokedAt = new Date();
    const revoke = updater.update(record.id, { revokedAt, updatedAt: revokedAt });
    await pointerRead;
    const moverHooks: RedisLayoutTestHooks = {
      afterStep: async (operation, step) => {
        if (operation === 'replaceHash' && step === 2) {
          frozen();
          // The revoke, which saw the old hash, runs to its end before the copy is placed.
          await revoke;
        }
      },
    };
    const mover = new RedisBackend(env.client, { namespace: env.namespace, layout: 3, [REDIS_LAYOUT_TEST_HOOKS]: moverHooks } as RedisBackendOptions);
    // The revoke finished the move itself, so this call made no change of its own.
    expect(await mover.replaceHash(record.id, record.keyHash, toHash)).toBe(false);
    expect(await revoke).toMatchObject({ revokedAt, keyHash: toHash, version: 2 });
    expect(await env.backend.getByHash(record.keyHash)).toBeNull();
    expect((await env.backend.getByHash(toHash))?.revokedAt).toEqual(revokedAt);
  });

  it('lists every key of an owner exactly once while creates, deletes and moves race the listing', async () => {
    const ownerId = 'owner-busy';
    const kept = Array.from({ length: 30 }, () => makeApiKeyRecord({ ownerId }));
    await Promise.all(kept.map((r) => env.backend.create(r)));
    const other = new RedisBackend(second, { namespace: env.namespace, layout: 3, pageSize: 4 });
    const churn = Array.from({ length: 20 }, () => makeApiKeyRecord({ ownerId }));
    const listings = async () => {
      const seen: string[] = [];
      for await (const r of other.listByOwner(ownerId)) seen.push(r.id);
      return seen;
    };
    const [listed] = await Promise.all([
      listings(),
      ...churn.map(async (r) => {
        await env.backend.create(r);
        await env.backend.delete(r.id);
      }),
      ...kept.slice(0, 10).map((r) => env.backend.replaceHash(r.id, r.keyHash, makeApiKeyRecord().keyHash)),
    ]);
    for (const r of kept) expect(listed.filter((id) => id === r.id)).toHaveLength(1);
    expect(await other.countByOwner(ownerId)).toBe(30);
  });
});

