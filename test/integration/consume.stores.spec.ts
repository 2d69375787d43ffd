import type { MikroORM } from '@mikro-orm/postgresql';
import {
  ApiKeyService,
  BackendUnavailableError,
  MemoryRateLimiter,
  type ApiKeyBackend,
  type ConsumeOutcome,
  type RateLimiter,
} from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { RedisBackend, RedisRateLimiter } from 'nestjs-api-auth/redis';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureProcessOutput, DRIVER_CONNECTION_ERROR } from '../fixtures/log-capture.js';
import { failFast, initOrm } from '../fixtures/mikro-orm.js';
import { PostgresRelay } from '../fixtures/postgres-relay.js';
import { createTestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, startRedisProxy, uniqueNamespace } from '../fixtures/redis.js';
import { pollUntil } from '../fixtures/wait-for.js';

/** What one row of the table opened: a way to build an instance's service, and the outage switch. */
interface ConsumeStack {
  backend: ApiKeyBackend;
  /** A new instance over the shared store; its own limiter where the limiter is in memory. */
  service(): ApiKeyService;
  /** Takes away what the row's outage names (the key store, or the limiter's Redis), then brings it back. */
  cut(): Promise<void>;
  heal(): Promise<void>;
  close(): Promise<void>;
}

interface ConsumeSetup {
  name: string;
  /** Whether two instances spend one balance: true where the counters live in Redis. */
  sharedLimits: boolean;
  /** What `cut` takes away: the key store (no record is read) or only the limiter (the key is found, then not charged). */
  outage: 'store' | 'limiter';
  open(): Promise<ConsumeStack>;
}

/** A node-redis client through a TCP proxy of its own, so an outage cuts this client only. */
async function proxiedRedis() {
  const proxy = await startRedisProxy();
  const client = await connectRedis({ url: proxy.url, disableOfflineQueue: true });
  return { proxy, client };
}

/** A database of its own, and an ORM reaching it directly or through a relay that `stop()` cuts. */
async function openPostgres(label: string, relayed: boolean) {
  const db = await createTestDatabase(label);
  const relay = relayed ? await PostgresRelay.start() : null;
  // Fail fast, as a production pool should, instead of queueing for a minute while the server is away.
  const orm: MikroORM = await initOrm(relay ? relay.via(db.url) : db.url, failFast(2_000));
  const backend = new MikroOrmBackend(orm);
  await backend.ensureSchema();
  return {
    backend,
    relay,
    close: async () => {
      await orm.close(true);
      await relay?.stop();
      await db.drop();
    },
  };
}

function serviceOver(backend: ApiKeyBackend, rateLimiter: RateLimiter): ApiKeyService {
  // No usage writes: they would outlive a case and reach a store an outage took away.
  return new ApiKeyService(resolveApiAuthOptions({ prefix: 'cs_', backend, rateLimiter, trackUsage: false, verifyTimeoutMs: 3_000 }));
}

const SETUPS: ConsumeSetup[] = [
  {
    name: 'RedisBackend + RedisRateLimiter',
    sharedLimits: true,
    outage: 'store',
    open: async () => {
      const { proxy, client } = await proxiedRedis();
      const namespace = uniqueNamespace('consume-redis');
      const backend = new RedisBackend(client, { namespace: `${namespace}keys:` });
      const limiter = new RedisRateLimiter(client, { namespace: `${namespace}limits:` });
      return {
        backend,
        service: () => serviceOver(backend, limiter),
        cut: () => proxy.stop(),
        heal: () => proxy.start(),
        close: async () => {
          const direct = await connectRedis();
          await deleteNamespace(direct, namespace);
          await direct.close();
          client.destroy();
          await proxy.stop();
        },
      };
    },
  },
  {
    name: 'MikroOrmBackend on PostgreSQL + MemoryRateLimiter',
    sharedLimits: false,
    outage: 'store',
    open: async () => {
      const pg = await openPostgres('consume_pg_memory', true);
      return {
        backend: pg.backend,
        service: () => serviceOver(pg.backend, new MemoryRateLimiter()),
        cut: () => pg.relay!.stop(),
        heal: () => pg.relay!.start(),
        close: pg.close,
      };
    },
  },
  {
    name: 'MikroOrmBackend on PostgreSQL + RedisRateLimiter',
    sharedLimits: true,
    outage: 'limiter',
    open: async () => {
      const pg = await openPostgres('consume_pg_redis', false);
      const { proxy, client } = await proxiedRedis();
      const namespace = uniqueNamespace('consume-pg-limits');
      const limiter = new RedisRateLimiter(client, { namespace });
      return {
        backend: pg.backend,
        service: () => serviceOver(pg.backend, limiter),
        cut: () => proxy.stop(),
        heal: () => proxy.start(),
        close: async () => {
          const direct = await connectRedis();
          await deleteNamespace(direct, namespace);
          await direct.close();
          client.destroy();
          await proxy.stop();
          await pg.close();
        },
      };
    },
  },
];

const DAY = 86_400_000;

/**
 * Runs `burst` until one run starts and ends in the same fixed window of `windowMs`
 * (the sliding window counter is exact inside one, an estimate across a boundary by
 * design); `burst` must use a fresh key each time. With a day-long window the first run
 * fits unless it straddles midnight UTC.
 */
async function inOneWindow<T>(windowMs: number, burst: () => Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = Date.now();
    const result = await burst();
    if (Math.floor(started / windowMs) === Math.floor(Date.now() / windowMs)) return result;
  }
  throw new Error(`No burst fitted in one ${windowMs} ms window.`);
}

/** ApiKeyService.consume on real stores and limiters: the guard's decision for code outside HTTP. */
describe.each(SETUPS)('ApiKeyService.consume on $name', (setup) => {
  let stack: ConsumeStack;
  let service: ApiKeyService;

  beforeAll(async () => {
    stack = await setup.open();
    service = stack.service();
  });
  afterAll(async () => {
    await service?.onApplicationShutdown();
    await stack?.close();
  });

  it('spends the quota by cost, refusing what it cannot pay with 429 quota_exhausted and no retry time', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'credits', policy: { quota: { limit: 10 } } });
    expect(await service.consume(key, { cost: 7 })).toMatchObject({ ok: true, apiKey: { id: apiKey.id }, quota: { limit: 10, remaining: 3 } });
    expect(await service.consume(key, { cost: 4 })).toMatchObject({ ok: false, code: 'quota_exhausted', status: 429, retryAfterMs: null, apiKey: { id: apiKey.id } });
    // A refused call spends nothing.
    expect(await service.consume(key, { cost: 0 })).toMatchObject({ ok: true, quota: { remaining: 3 } });
    expect(await service.consume(key, { cost: 3 })).toMatchObject({ ok: true, quota: { remaining: 0 } });
    expect((await service.getUsage(apiKey.id)).quota).toMatchObject({ limit: 10, remaining: 0 });
    expect(await service.consume(key)).toMatchObject({ ok: false, code: 'quota_exhausted' });
  });

  it('counts rate limits, refusing the call past the limit with 429 rate_limited and a retry time', async () => {
    const outcomes = await inOneWindow(DAY, async () => {
      const { key } = await service.issue({ ownerId: 'o', name: 'limited', policy: { rateLimits: [{ name: 'daily', limit: 3, windowMs: DAY }] } });
      const seen: ConsumeOutcome[] = [];
      for (let i = 0; i < 4; i++) seen.push(await service.consume(key));
      return seen;
    });
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true, false]);
    expect(outcomes[0]).toMatchObject({ ok: true, rateLimit: { name: 'daily', limit: 3, remaining: 2 }, quota: null });
    expect(outcomes[2]).toMatchObject({ ok: true, rateLimit: { name: 'daily', remaining: 0 } });
    expect(outcomes[3]).toMatchObject({ ok: false, code: 'rate_limited', status: 429 });
    const retryAfterMs = (outcomes[3] as { retryAfterMs: number }).retryAfterMs;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(DAY);
  });

  it(`shares the balance between two instances: ${setup.sharedLimits ? 'one balance' : 'one each'}`, async () => {
    const other = stack.service();
    try {
      const { key } = await service.issue({ ownerId: 'o', name: 'fleet', policy: { quota: { limit: 2 } } });
      expect(await service.consume(key)).toMatchObject({ ok: true, quota: { remaining: 1 } });
      expect(await other.consume(key)).toMatchObject({ ok: true, quota: { remaining: setup.sharedLimits ? 0 : 1 } });
      expect(await service.consume(key)).toMatchObject(setup.sharedLimits ? { ok: false, code: 'quota_exhausted' } : { ok: true, quota: { remaining: 0 } });
    } finally {
      await other.onApplicationShutdown();
    }
  });

  it('refuses an address outside the IP allowlist, or none, with 403 ip_not_allowed and charges nothing', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'ip', policy: { allowedIps: ['10.0.0.0/8'], quota: { limit: 5 } } });
    expect(await service.consume(key, { ip: '192.0.2.1' })).toMatchObject({ ok: false, code: 'ip_not_allowed', status: 403, apiKey: { id: apiKey.id } });
    expect(await service.consume(key)).toMatchObject({ ok: false, code: 'ip_not_allowed', status: 403 });
    expect(await service.consume(key, { ip: '10.1.2.3' })).toMatchObject({ ok: true, quota: { remaining: 4 } });
  });

  it('refuses a disabled, a revoked and an expired key with their 401 codes, and passes a re-enabled one', async () => {
    const disabled = await service.issue({ ownerId: 'o', name: 'disabled', policy: { quota: { limit: 5 } } });
    await service.disable(disabled.apiKey.id);
    expect(await service.consume(disabled.key)).toMatchObject({ ok: false, code: 'disabled_api_key', status: 401, apiKey: null });
    await service.enable(disabled.apiKey.id);
    expect(await service.consume(disabled.key)).toMatchObject({ ok: true, quota: { remaining: 4 } });

    const revoked = await service.issue({ ownerId: 'o', name: 'revoked' });
    await service.revoke(revoked.apiKey.id);
    expect(await service.consume(revoked.key)).toMatchObject({ ok: false, code: 'revoked_api_key', status: 401, apiKey: null });

    const expired = await service.issue({ ownerId: 'o', name: 'expired' });
    // Expired in the past, written to the store before its first use: the service only accepts future expiries.
    await stack.backend.update(expired.apiKey.id, { expiresAt: new Date(Date.now() - 60_000), updatedAt: new Date() });
    expect(await service.consume(expired.key)).toMatchObject({ ok: false, code: 'expired_api_key', status: 401, apiKey: null });
    expect(await service.consume(service.format.generate())).toMatchObject({ ok: false, code: 'invalid_api_key', status: 401 });
  });

  it(`answers 503 backend_unavailable without rejecting while the ${setup.outage === 'store' ? 'key store' : 'limiter'} is down, and recovers`, async () => {
    // Never used before the outage, so no cache holds it: the store must be asked.
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'outage', policy: { quota: { limit: 5 } } });
    // The outage's expected driver lines (knex prints a cut connection on MikroORM 6), kept for the assertions.
    const output = captureProcessOutput();
    let outcomes: ConsumeOutcome[];
    try {
      await stack.cut();
      outcomes = [await service.consume(key), await service.consume(key, { cost: 2 })];
      await stack.heal();
      await pollUntil(async () => (await service.consume(key, { cost: 0 })).ok, 'consume to succeed after the outage', { attempts: 200, intervalMs: 50 });
    } finally {
      output.restore();
    }
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ ok: false, code: 'backend_unavailable', status: 503, retryAfterMs: null });
      expect(!outcome.ok && outcome.error).toBeInstanceOf(BackendUnavailableError);
      // A store outage reads no record; a limiter outage found the key and refused to let it through uncharged.
      expect(!outcome.ok && outcome.apiKey?.id).toBe(setup.outage === 'store' ? undefined : apiKey.id);
    }
    // The refused calls spent nothing.
    expect(await service.consume(key)).toMatchObject({ ok: true, quota: { remaining: 4 } });
    const unexpected = output.lines.filter((line) => !DRIVER_CONNECTION_ERROR.test(line));
    expect(unexpected).toEqual([]);
    expect(output.lines.filter((line) => line.includes(key))).toEqual([]);
  });
});
