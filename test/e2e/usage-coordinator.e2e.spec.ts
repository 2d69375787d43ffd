import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiAuthModule, ApiKeyService, CachedBackend, MemoryBackend, type ApiKey } from 'nestjs-api-auth';
import { RedisUsageCoordinator } from 'nestjs-api-auth/redis';
import { bootApp, type Adapter } from '../fixtures/app.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';

/**
 * The usage interval. Long, because it never ends on its own here: the test ends each
 * one by a step of a stopped Date (the instances' clocks) and by ending the claims in
 * Redis (what their PX does at the interval's end), so a slow machine cannot end an
 * interval in the middle of a burst, nor stretch one.
 */
const INTERVAL_MS = 60_000;
/** Intervals the coordinated test runs through. */
const INTERVALS = 3;
const PREFIX = 'use_';

/** The shared database of the fleet: a memory store that notes when each usage write arrived. */
class TimedStore extends MemoryBackend {
  readonly writes: Array<{ id: string; at: number }> = [];

  override recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    this.writes.push({ id, at: Date.now() });
    return super.recordUsage(id, usedAt, staleBefore);
  }
}

type Client = Awaited<ReturnType<typeof connectRedis>>;

interface Fleet {
  store: TimedStore;
  apps: INestApplication[];
  clients: Client[];
  close(): Promise<void>;
}

/**
 * Two instances over one store, each with its own L1 (whose cached `lastUsedAt` never
 * refreshes during the test, the worst case for per-process dedup) and, when
 * `coordinated`, its own Redis connection for the coordinator.
 */
async function startFleet(namespace: string, coordinated: boolean): Promise<Fleet> {
  const store = new TimedStore();
  const apps: INestApplication[] = [];
  const clients: Client[] = [];
  for (const adapter of ['express', 'fastify'] as Adapter[]) {
    const client = await connectRedis();
    clients.push(client);
    const backend = new CachedBackend(store, { ttl: 600_000 });
    const module = ApiAuthModule.forRoot({
      backend,
      prefix: PREFIX,
      usageIntervalMs: INTERVAL_MS,
      ...(coordinated ? { usageCoordinator: new RedisUsageCoordinator(client, { namespace }) } : {}),
    });
    const app = await bootApp(adapter, [module]);
    await app.listen(0, '127.0.0.1');
    apps.push(app);
  }
  return {
    store,
    apps,
    clients,
    close: async () => {
      for (const app of apps) await app.close();
      for (const client of clients) await client.close();
    },
  };
}

/**
 * Sends `perKey` verifications of every key to every instance, `concurrency` at a time
 * each, and resolves to how many were answered 200. By count, not for a while: the
 * interval's end is a step of the test, not something the load may run into.
 */
async function burst(apps: INestApplication[], keys: string[], perKey = 25, concurrency = 6): Promise<number> {
  let ok = 0;
  const worker = async (base: string, offset: number) => {
    for (let i = offset; i < keys.length * perKey; i += concurrency) {
      const res = await fetch(`${base}/t/me`, { headers: { 'x-api-key': keys[i % keys.length]! } });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      ok++;
    }
  };
  await Promise.all(
    apps.flatMap((app) => {
      const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
      return Array.from({ length: concurrency }, (_, n) => worker(base, n));
    }),
  );
  return ok;
}

function writesByKey(store: TimedStore, ids: string[]): Map<string, number[]> {
  return new Map(ids.map((id) => [id, store.writes.filter((w) => w.id === id).map((w) => w.at)]));
}

describe('lastUsedAt under sustained load on two instances (express + fastify), Redis-coordinated', () => {
  const namespace = uniqueNamespace('usage-fleet').slice(0, -1);
  let admin: Client;

  beforeAll(async () => {
    admin = await connectRedis();
  });

  afterAll(async () => {
    await deleteNamespace(admin, `${namespace}:`);
    await admin?.close();
  });

  it('makes exactly one usage write per key per interval across both instances', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const fleet = await startFleet(namespace, true);
    try {
      const service = fleet.apps[0]!.get(ApiKeyService);
      const issued = await Promise.all([1, 2].map((n) => service.issue({ ownerId: 'o', name: `k${n}` })));
      const ids = issued.map((i) => i.apiKey.id);
      const started = Date.now();
      let served = 0;
      for (let interval = 0; interval < INTERVALS; interval++) {
        if (interval > 0) {
          // The interval ends, on the instances' clocks and in Redis.
          vi.setSystemTime(started + interval * INTERVAL_MS);
          const claims = await scanKeys(admin, `${namespace}:usage:`);
          expect(claims.length, `claims of interval ${interval - 1}`).toBe(ids.length);
          await admin.del(claims);
        }
        // Hundreds of verifications of each key on both instances within the interval ...
        served += await burst(fleet.apps, issued.map((i) => i.key));
        for (const app of fleet.apps) await app.get(ApiKeyService).flushUsage();
        // ... and one write per key: never a second in the interval, and none skipped.
        for (const [id, times] of writesByKey(fleet.store, ids)) {
          expect(times, `writes of ${id} by interval ${interval}`).toEqual(
            Array.from({ length: interval + 1 }, (_, i) => started + i * INTERVAL_MS),
          );
        }
      }
      expect(served).toBe(INTERVALS * 2 * 2 * 25);
      // The writes reached the store: every key's lastUsedAt is set.
      for (const id of ids) expect(((await fleet.store.getById(id)) as ApiKey).lastUsedAt).toBeInstanceOf(Date);
    } finally {
      await fleet.close();
      vi.useRealTimers();
    }
  });

  it('without the coordinator, both instances write in the same interval (what the coordinator saves)', async () => {
    const fleet = await startFleet(namespace, false);
    try {
      const service = fleet.apps[0]!.get(ApiKeyService);
      const issued = await Promise.all([1, 2].map((n) => service.issue({ ownerId: 'o', name: `k${n}` })));
      await burst(fleet.apps, issued.map((i) => i.key));
      for (const app of fleet.apps) await app.get(ApiKeyService).flushUsage();
      for (const [, times] of writesByKey(fleet.store, issued.map((i) => i.apiKey.id))) {
        // Each instance sends its own first write: two within one interval.
        expect(times).toHaveLength(2);
      }
    } finally {
      await fleet.close();
    }
  });
});
