import {
  ApiKeyService,
  CachedBackend,
  KeyHasher,
  LocalInvalidationBus,
  MemoryBackend,
  type ApiKeyBackend,
  type ApiKeyEvent,
} from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

const OLD = 'old-pepper-0123456789';
const NEW = 'new-pepper-0123456789';
const USES = 24;

/** Two instances' stores over one shared store: each its own connection (and L1, where there is one). */
interface Fleet {
  name: string;
  open(): Promise<{ stores: [ApiKeyBackend, ApiKeyBackend]; primaries: [ApiKeyBackend, ApiKeyBackend]; close(): Promise<void> }>;
}

const FLEETS: Fleet[] = [
  {
    name: 'MemoryBackend (one process)',
    open: async () => {
      const memory = new MemoryBackend();
      return { stores: [memory, memory], primaries: [memory, memory], close: async () => undefined };
    },
  },
  {
    name: 'RedisBackend, a client per instance',
    open: async () => {
      const namespace = uniqueNamespace('pepper-rotation');
      const clients = await Promise.all([connectRedis(), connectRedis()]);
      const stores = clients.map((client) => new RedisBackend(client, { namespace })) as [RedisBackend, RedisBackend];
      return {
        stores,
        primaries: stores,
        close: async () => {
          await deleteNamespace(clients[0], namespace);
          await Promise.all(clients.map((client) => client.close()));
        },
      };
    },
  },
  {
    name: 'RedisBackend layout 3, a client per instance',
    open: async () => {
      const namespace = uniqueNamespace('pepper-rotation');
      const clients = await Promise.all([connectRedis(), connectRedis()]);
      const stores = clients.map((client) => new RedisBackend(client, { namespace, layout: 3 })) as [RedisBackend, RedisBackend];
      return {
        stores,
        primaries: stores,
        close: async () => {
          await deleteNamespace(clients[0], namespace);
          await Promise.all(clients.map((client) => client.close()));
        },
      };
    },
  },
  {
    name: 'MikroOrmBackend on PostgreSQL, an ORM and an L1 per instance, one invalidation bus',
    open: async () => {
      const db = await createTestDatabase('pepper-rotation');
      const orms = await Promise.all([initOrm(db.url), initOrm(db.url)]);
      const primaries = orms.map((orm) => new MikroOrmBackend(orm)) as [MikroOrmBackend, MikroOrmBackend];
      await primaries[0].ensureSchema();
      const bus = new LocalInvalidationBus();
      return {
        primaries,
        stores: primaries.map((primary) => new CachedBackend(counting(primary), { bus, ttl: 60_000 })) as [CachedBackend, CachedBackend],
        close: async () => {
          await Promise.all(orms.map((orm) => orm.close(true)));
          await db.drop();
        },
      };
    },
  },
];

/** How many `replaceHash` calls returned true, per wrapped store. */
const wins = new WeakMap<ApiKeyBackend, { won: number }>();

/** `backend` with the `replaceHash` calls that won counted; every other call goes to it. */
function counting(backend: ApiKeyBackend): ApiKeyBackend {
  if (wins.has(backend)) return backend;
  const tally = { won: 0 };
  const wrapper: ApiKeyBackend = Object.assign(Object.create(backend) as ApiKeyBackend, {
    replaceHash: async (id: string, from: string, to: string) => {
      const won = await backend.replaceHash!(id, from, to);
      if (won) tally.won++;
      return won;
    },
  });
  wins.set(wrapper, tally);
  return wrapper;
}

describe.each(FLEETS)('pepper rotation on $name', (fleet) => {
  let env: Awaited<ReturnType<Fleet['open']>>;
  beforeAll(async () => {
    env = await fleet.open();
  });
  afterAll(async () => {
    await env?.close();
  });

  function instance(store: ApiKeyBackend, options: object) {
    const events: ApiKeyEvent[] = [];
    const backend = store instanceof CachedBackend ? store : counting(store);
    // No usage writes: they would still be pending when the store closes, and are not the subject.
    const service = new ApiKeyService(
      resolveApiAuthOptions({ prefix: 'rot_', backend, trackUsage: false, onEvent: (e) => void events.push(e), ...options }),
    );
    return { service, events, backend };
  }

  /** `replaceHash` wins summed over both instances' stores. */
  function won(...stores: ApiKeyBackend[]): number {
    const tallies = new Set(stores.map((s) => wins.get(s instanceof CachedBackend ? s.primary : s)!));
    return [...tallies].reduce((sum, t) => sum + t.won, 0);
  }

  it('upgrades a key exactly once when its first uses race on two instances, and it keeps working', async () => {
    const { key, apiKey } = await instance(env.stores[0], { pepper: OLD }).service.issue({ ownerId: 'o', name: 'k' });
    const a = instance(env.stores[0], { pepper: NEW, previousPeppers: [OLD] });
    const b = instance(env.stores[1], { pepper: NEW, previousPeppers: [OLD] });
    const before = won(a.backend, b.backend);

    const results = await Promise.all(Array.from({ length: USES }, (_, i) => (i % 2 ? a : b).service.verify(key)));
    expect(results.map((r) => r?.id)).toEqual(Array(USES).fill(apiKey.id));
    expect(won(a.backend, b.backend) - before).toBe(1);
    expect([...a.events, ...b.events].filter((e) => e.type === 'api-key.rehashed')).toEqual([
      { type: 'api-key.rehashed', id: apiKey.id, at: expect.any(Date) },
    ]);

    expect(await env.primaries[1].getByHash(new KeyHasher(OLD).hash(key))).toBeNull();
    const upgraded = await env.primaries[0].getByHash(new KeyHasher(NEW).hash(key));
    expect(upgraded?.id).toBe(apiKey.id);
    expect(upgraded?.version).toBe(1);
    for (const { service } of [a, b]) expect((await service.verify(key))?.id).toBe(apiKey.id);
    // A deployment still on the old pepper no longer finds it: the hash moved for good.
    expect(await instance(env.stores[1], { pepper: OLD }).service.verify(key)).toBeNull();
  });

  it('an instance that remembered the new hash as unknown serves the key once another instance upgraded it', async () => {
    const { key, apiKey } = await instance(env.stores[0], { pepper: OLD }).service.issue({ ownerId: 'o', name: 'k' });
    const a = instance(env.stores[0], { pepper: NEW, previousPeppers: [OLD] });
    const b = instance(env.stores[1], { pepper: NEW, previousPeppers: [OLD] });
    const newHash = new KeyHasher(NEW).hash(key);
    // B looks the key up under the new pepper before the upgrade: a miss its L1 may keep.
    expect(await env.stores[1].getByHash(newHash)).toBeNull();
    expect((await a.service.verify(key))?.id).toBe(apiKey.id);
    expect((await b.service.verify(key))?.id).toBe(apiKey.id);
    expect(b.events.filter((e) => e.type === 'api-key.rehashed')).toEqual([]);
  });
});
