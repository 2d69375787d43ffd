import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, CachedBackend, MemoryBackend, type ApiKey } from 'nestjs-api-auth';
import { RedisUsageCoordinator } from 'nestjs-api-auth/redis';
import { bootApp, type Adapter } from '../fixtures/app.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

const INTERVAL_MS = 1_000;
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

/** Sends valid requests to every instance, `concurrency` at a time each, for `durationMs`. */
async function sustainLoad(apps: INestApplication[], keys: string[], durationMs: number, concurrency = 6): Promise<number> {
  const deadline = Date.now() + durationMs;
  let ok = 0;
  const worker = async (base: string, offset: number) => {
    for (let i = offset; Date.now() < deadline; i++) {
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
    const fleet = await startFleet(namespace, true);
    try {
      const service = fleet.apps[0]!.get(ApiKeyService);
      const issued = await Promise.all([1, 2].map((n) => service.issue({ ownerId: 'o', name: `k${n}` })));
      const ids = issued.map((i) => i.apiKey.id);

      const served = await sustainLoad(fleet.apps, issued.map((i) => i.key), 3.5 * INTERVAL_MS);
      const ended = Date.now();
      for (const app of fleet.apps) await app.get(ApiKeyService).flushUsage();

      expect(served).toBeGreaterThan(300); // sustained: hundreds of verifications per key
      for (const [id, times] of writesByKey(fleet.store, ids)) {
        expect(times.length, `writes of ${id}`).toBeGreaterThanOrEqual(3);
        for (let i = 1; i < times.length; i++) {
          const gap = times[i]! - times[i - 1]!;
          // Never two writes within one interval (less the time a claim's reply takes to arrive) ...
          expect(gap, `gap between writes of ${id}`).toBeGreaterThanOrEqual(INTERVAL_MS - 100);
          // ... and no interval skipped: the first use after an interval ends writes, on either instance.
          expect(gap, `gap between writes of ${id}`).toBeLessThan(INTERVAL_MS + 400);
        }
        expect(ended - times.at(-1)!).toBeLessThan(INTERVAL_MS + 400);
      }
      // The writes reached the store: every key's lastUsedAt is set.
      for (const id of ids) expect(((await fleet.store.getById(id)) as ApiKey).lastUsedAt).toBeInstanceOf(Date);
    } finally {
      await fleet.close();
    }
  });

  it('without the coordinator, both instances write in the same interval (what the coordinator saves)', async () => {
    const fleet = await startFleet(namespace, false);
    try {
      const service = fleet.apps[0]!.get(ApiKeyService);
      const issued = await Promise.all([1, 2].map((n) => service.issue({ ownerId: 'o', name: `k${n}` })));
      await sustainLoad(fleet.apps, issued.map((i) => i.key), 0.6 * INTERVAL_MS);
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
