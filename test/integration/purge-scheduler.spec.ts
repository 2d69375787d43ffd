import { Test } from '@nestjs/testing';
import { ApiAuthModule, MemoryBackend, type ApiKeyBackend, type ApiKeyEvent, type PurgeOptions } from 'nestjs-api-auth';
import { RedisBackend, RedisUsageCoordinator } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { ApiKeyService } from '../../lib/api-key.service.js';
import { PurgeScheduler } from '../../lib/purge/purge.scheduler.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

const INTERVAL = 60_000;
const HOUR = 3_600_000;
// Interval-aligned, so every instance's timer fires in a known interval.
const START = Math.ceil(Date.now() / INTERVAL) * INTERVAL;

/** `backend` with its purge calls counted: one wrapper per instance, one store behind them. */
function counted(backend: ApiKeyBackend & { purge: NonNullable<ApiKeyBackend['purge']> }) {
  const calls: number[] = [];
  const wrapper: ApiKeyBackend = Object.assign(Object.create(backend) as ApiKeyBackend, {
    purge: async (options: PurgeOptions) => {
      const deleted = await backend.purge(options);
      calls.push(deleted);
      return deleted;
    },
  });
  return { backend: wrapper, calls };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the purge option on two instances sharing Redis', () => {
  let client: Awaited<ReturnType<typeof connectRedis>>;
  let namespace: string;
  beforeAll(async () => {
    client = await connectRedis({ disableOfflineQueue: true });
    namespace = uniqueNamespace('purge-scheduler');
  });
  afterAll(async () => {
    await deleteNamespace(client, namespace);
    await client.close();
  });

  /** An instance: its own service, scheduler and coordinator over the shared store and Redis. */
  function instance(store: RedisBackend, purge: object = {}) {
    const { backend, calls } = counted(store);
    const options = resolveApiAuthOptions({
      backend,
      usageCoordinator: new RedisUsageCoordinator(client, { namespace: namespace.replace(/:+$/, '') }),
      purge: { intervalMs: INTERVAL, expiredFor: HOUR, revokedFor: HOUR, batchSize: 4, ...purge },
    });
    return { scheduler: new PurgeScheduler(new ApiKeyService(options), options), calls };
  }

  async function expiredKeys(store: RedisBackend, count: number): Promise<void> {
    for (let i = 0; i < count; i++) await store.create(makeApiKeyRecord({ expiresAt: new Date(Date.now() - 2 * HOUR) }));
  }

  it('purges on exactly one instance per interval, aligned timers or not', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(START);
    const store = new RedisBackend(client, { namespace: `${namespace}keys:` });
    const a = instance(store);
    const b = instance(store);
    const late = instance(store);
    a.scheduler.start();
    b.scheduler.start();
    // A third instance whose timer fires half an interval after the others'.
    await vi.advanceTimersByTimeAsync(INTERVAL / 2);
    late.scheduler.start();
    await vi.advanceTimersByTimeAsync(INTERVAL / 2);
    await Promise.all([a.scheduler.whenIdle(), b.scheduler.whenIdle(), late.scheduler.whenIdle()]);

    const turns: string[] = [];
    for (let interval = 1; interval <= 4; interval++) {
      await expiredKeys(store, 6);
      const before = [a.calls.length, b.calls.length, late.calls.length];
      await vi.advanceTimersByTimeAsync(INTERVAL);
      await Promise.all([a.scheduler.whenIdle(), b.scheduler.whenIdle(), late.scheduler.whenIdle()]);
      const purged = [a, b, late].map((x, i) => x.calls.slice(before[i]));
      // One instance ran the interval's purge: batches of 4, then 2, then it stopped.
      expect(purged.filter((calls) => calls.length > 0)).toEqual([[4, 2]]);
      turns.push(['a', 'b', 'late'][purged.findIndex((calls) => calls.length > 0)]!);
    }
    expect(turns).toHaveLength(4);
    // The late timer fires mid-interval, after one of the others claimed it: never a second turn.
    expect(turns).not.toContain('late');
    await Promise.all([a.scheduler.stop(), b.scheduler.stop(), late.scheduler.stop()]);
  });

  it('stops purging when the instance shuts down', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(START + 100 * INTERVAL);
    const store = new RedisBackend(client, { namespace: `${namespace}stop:` });
    const a = instance(store);
    a.scheduler.start();
    await expiredKeys(store, 2);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    await a.scheduler.whenIdle();
    expect(a.calls).toEqual([2]);
    await a.scheduler.stop();
    await expiredKeys(store, 2);
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(a.calls).toEqual([2]);
  });
});

describe('the purge option in one process (memory, through the module)', () => {
  it('purges every interval with its retention, and stops on app.close()', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(START);
    const backend = new MemoryBackend();
    const events: ApiKeyEvent[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [
        ApiAuthModule.forRoot({
          backend,
          onEvent: (e) => void events.push(e),
          purge: { intervalMs: INTERVAL, expiredFor: HOUR, revokedFor: 0 },
        }),
      ],
    }).compile();
    const app = await moduleRef.createNestApplication().init();
    const scheduler = app.get(PurgeScheduler);
    const old = makeApiKeyRecord({ expiresAt: new Date(Date.now() - 2 * HOUR) });
    const recent = makeApiKeyRecord({ expiresAt: new Date(Date.now() - 1_000) });
    const revoked = makeApiKeyRecord({ revokedAt: new Date(Date.now() - 1_000) });
    for (const record of [old, recent, revoked]) await backend.create(record);

    await vi.advanceTimersByTimeAsync(INTERVAL);
    await scheduler.whenIdle();
    // Expired for less than expiredFor: kept; revoked with revokedFor 0: gone.
    expect(await backend.getById(old.id)).toBeNull();
    expect(await backend.getById(revoked.id)).toBeNull();
    expect(await backend.getById(recent.id)).not.toBeNull();
    expect(events).toEqual([{ type: 'api-key.purged', deleted: 2, batches: 1, done: true, at: expect.any(Date) }]);

    await vi.advanceTimersByTimeAsync(HOUR);
    await scheduler.whenIdle();
    expect(await backend.getById(recent.id)).toBeNull();
    expect(events.map((e) => e.type === 'api-key.purged' && e.deleted)).toEqual([2, 1]);

    await app.close();
    await backend.create(makeApiKeyRecord({ revokedAt: new Date(Date.now() - 1_000) }));
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(backend.size).toBe(1);
    expect(events).toHaveLength(2);
  });
});
