import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService, MemoryBackend, type ApiAuthModuleOptions } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { RedisBackend, RedisCacheBackend, RedisRateLimiter } from 'nestjs-api-auth/redis';
import { ApiKeyHealthIndicator } from 'nestjs-api-auth/terminus';
import { ADAPTERS, type Adapter } from '../fixtures/app.js';
import { captureConsoleLines, CapturingLogger, DRIVER_CONNECTION_ERROR } from '../fixtures/log-capture.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, DATABASE_URL, urlFor, type TestDatabase } from '../fixtures/postgres.js';
import { bootPolicyApp, call } from '../fixtures/rate-limit.setups.js';
import { keyvRedisVariant, type TestCache } from '../fixtures/redis-cache.fixtures.js';
import { connectRedis, deleteNamespace, startRedisProxy, uniqueNamespace, type RedisProxy } from '../fixtures/redis.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly apiKeys: ApiKeyHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.apiKeys.checkBackend(),
      () => this.apiKeys.checkCache(),
      () => this.apiKeys.checkRateLimiter(),
    ]);
  }
}

/**
 * An app with the health endpoint (and no other routes) over the given key setup. Its
 * log lines are kept in `logs`: Terminus logs every failed check as an error and the
 * Redis cache its outage as a warning, which these tests cause on purpose and assert.
 */
async function bootHealthApp(adapter: Adapter, auth: ApiAuthModuleOptions) {
  const logs = new CapturingLogger();
  const booted = await bootPolicyApp(adapter, { prefix: 'hc_', verifyTimeoutMs: 1_000, ...auth }, {
    imports: [TerminusModule],
    controllers: [HealthController],
    providers: [ApiKeyHealthIndicator],
  });
  booted.app.useLogger(logs);
  return { ...booted, logs };
}

/** The error lines Terminus logged for failed checks. */
const failedChecks = (logs: CapturingLogger) => logs.lines.filter((line) => line.startsWith('[error] Health Check has failed!'));

/** Statuses of the three indicators, from GET /health, with the HTTP status. */
async function health(url: string) {
  const res = await call(url, '/health', undefined);
  const details = res.body.details as Record<string, { status: string }>;
  return {
    http: res.status,
    backend: details['api-keys']?.status,
    cache: details['api-keys-cache']?.status,
    limiter: details['api-keys-rate-limiter']?.status,
    body: res.body,
  };
}

/**
 * Polls `/health` until `accept` holds, at most `attempts` times; node-redis reconnects
 * with back-off. Bounded by a count, not a deadline: a busy machine makes it slower, never shorter.
 */
async function healthUntil(url: string, accept: (h: Awaited<ReturnType<typeof health>>) => boolean, attempts = 100) {
  for (let attempt = 1; ; attempt++) {
    const h = await health(url);
    if (accept(h) || attempt >= attempts) return h;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.each(ADAPTERS)('the Terminus health indicator over %s', (adapter) => {
  describe('on the memory setup', () => {
    let app: INestApplication;
    let url: string;
    let logs: CapturingLogger;

    beforeAll(async () => {
      ({ app, url, logs } = await bootHealthApp(adapter, { backend: new MemoryBackend() }));
    });
    afterAll(async () => {
      await app?.close();
    });

    it('reports the store, no cache, and the in-process limiter up', async () => {
      const res = await call(url, '/health', undefined);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('ok');
      expect(res.body.details).toMatchObject({
        'api-keys': { status: 'up', store: 'MemoryBackend' },
        'api-keys-cache': { status: 'up', caches: 0 },
        'api-keys-rate-limiter': { status: 'up', limiter: 'MemoryRateLimiter' },
      });
      expect(logs.lines.filter((line) => !line.startsWith('[log]'))).toEqual([]);
    });
  });

  describe('on a custom backend whose error quotes a key hash', () => {
    const hash = 'ab'.repeat(32);
    class LeakyBackend extends MemoryBackend {
      override async getById(): Promise<never> {
        throw new Error(`lookup under ${hash} failed`);
      }
    }
    let app: INestApplication;
    let url: string;
    let logs: CapturingLogger;

    beforeAll(async () => {
      ({ app, url, logs } = await bootHealthApp(adapter, { backend: new LeakyBackend() }));
    });
    afterAll(async () => {
      await app?.close();
    });

    it('reports the store down with the message redacted, since health responses are often public', async () => {
      const h = await health(url);
      expect(h.http).toBe(503);
      expect(h.backend).toBe('down');
      const body = JSON.stringify(h.body);
      expect(body).toContain('lookup under [redacted] failed');
      expect(body).not.toContain(hash);
      expect(failedChecks(logs)).toHaveLength(1);
      expect(logs.lines.join('\n')).not.toContain(hash);
    });
  });

  describe('on the Redis setup (RedisBackend + RedisRateLimiter)', () => {
    let app: INestApplication;
    let url: string;
    let proxy: RedisProxy;
    let client: Awaited<ReturnType<typeof connectRedis>>;
    let namespace: string;
    let logs: CapturingLogger;

    beforeAll(async () => {
      proxy = await startRedisProxy();
      client = await connectRedis({
        url: proxy.url,
        disableOfflineQueue: true,
        socket: { reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 200) },
      });
      namespace = uniqueNamespace(`health-${adapter}`);
      ({ app, url, logs } = await bootHealthApp(adapter, {
        backend: new RedisBackend(client, { namespace }),
        rateLimiter: new RedisRateLimiter(client, { namespace: `${namespace}limits:` }),
      }));
    });
    afterAll(async () => {
      await app?.close();
      await proxy?.start();
      const cleaner = await connectRedis();
      await deleteNamespace(cleaner, namespace);
      await cleaner.close();
      client?.destroy();
      await proxy?.stop();
    });

    it('reports down (503) while Redis is down, and up again when it is back', async () => {
      expect(await health(url)).toMatchObject({ http: 200, backend: 'up', cache: 'up', limiter: 'up' });
      const { key } = await app.get(ApiKeyService).issue({ ownerId: 'hc', name: 'k' });

      await proxy.stop();
      const down = await health(url);
      expect(down).toMatchObject({ http: 503, backend: 'down', limiter: 'down' });
      expect(down.body.status).toBe('error');
      // The message says what failed and names no key.
      expect(JSON.stringify(down.body)).not.toContain(key);

      await proxy.start();
      expect(await healthUntil(url, (h) => h.http === 200)).toMatchObject({ http: 200, backend: 'up', limiter: 'up' });
      expect(failedChecks(logs).length).toBeGreaterThanOrEqual(1);
      expect(logs.lines.join('\n')).not.toContain(key);
    });
  });

  describe('on PostgreSQL (MikroORM) behind a Redis cache', () => {
    let app: INestApplication;
    let url: string;
    let db: TestDatabase;
    let orm: MikroORM;
    let pgRelay: RedisProxy;
    let redisProxy: RedisProxy;
    let cache: TestCache;
    let cacheNamespace: string;
    let logs: CapturingLogger;
    // What the driver prints when the outage below cuts its pooled connections: kept and
    // asserted, not printed. Until afterAll, since a cut connection may be handed out later.
    let driverLines: ReturnType<typeof captureConsoleLines> | undefined;

    beforeAll(async () => {
      db = await createTestDatabase(`health_${adapter}`);
      // A TCP relay in front of the real PostgreSQL: stopping it is an outage as the app sees it.
      const target = new URL(DATABASE_URL);
      pgRelay = await startRedisProxy(`redis://${target.hostname}:${target.port || 5432}`);
      const relayed = new URL(urlFor(db.name));
      relayed.host = new URL(pgRelay.url).host;
      orm = await initOrm(relayed.toString(), { pool: { min: 0, max: 4, acquireTimeoutMillis: 1_000 } as never });
      redisProxy = await startRedisProxy();
      cacheNamespace = uniqueNamespace(`health-cache-${adapter}`);
      cache = await keyvRedisVariant.create(cacheNamespace, redisProxy.url);
      const primary = new MikroOrmBackend(orm, { ensureSchema: true });
      await primary.ensureSchema();
      ({ app, url, logs } = await bootHealthApp(adapter, {
        backend: new RedisCacheBackend({ cache: cache.cache, primary, ttl: 60_000, timeoutMs: 200, retryIntervalMs: 100 }),
      }));
    });
    afterAll(async () => {
      await app?.close();
      await cache?.close();
      await orm?.close();
      driverLines?.restore();
      await pgRelay?.stop();
      await redisProxy?.stop();
      await db?.drop();
      // The cache's entries and probe values, which would otherwise linger until their TTLs.
      const cleaner = await connectRedis();
      await deleteNamespace(cleaner, cacheNamespace);
      await cleaner.close();
    });

    it('reports the cache down when Redis is down, while the store stays up', async () => {
      expect(await health(url)).toMatchObject({ http: 200, backend: 'up', cache: 'up' });
      await redisProxy.stop();
      expect(await health(url)).toMatchObject({ http: 503, backend: 'up', cache: 'down', limiter: 'up' });
      await redisProxy.start();
      expect(await healthUntil(url, (h) => h.cache === 'up')).toMatchObject({ http: 200, cache: 'up' });
      expect(failedChecks(logs).some((line) => line.includes('"api-keys-cache"') && line.includes('"down"'))).toBe(true);
    });

    it('reports the store down when PostgreSQL is down', async () => {
      driverLines = captureConsoleLines(DRIVER_CONNECTION_ERROR);
      await pgRelay.stop();
      expect(await health(url)).toMatchObject({ http: 503, backend: 'down', cache: 'up' });
      await pgRelay.start();
      expect(await healthUntil(url, (h) => h.backend === 'up')).toMatchObject({ http: 200, backend: 'up' });
      expect(failedChecks(logs).some((line) => line.includes('PostgreSQL is unavailable'))).toBe(true);
      expect(driverLines.lines.length).toBeGreaterThan(0);
    });
  });
});
