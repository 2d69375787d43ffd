import { Logger, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { startFullStack, type FullStack } from '../fixtures/full-stack.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { RedisProxy } from '../fixtures/redis-cache.fixtures.js';

// The management routes of an instance cut off from Redis (not from PostgreSQL), over
// the cached provider: a revoke there is refused with the routes' 503 body, and nothing
// changes; another instance sharing Redis and PostgreSQL takes the retry.

let db: TestDatabase;
let admin: Awaited<ReturnType<typeof connectRedis>>;
const namespace = uniqueNamespace('partitioned-write');

beforeAll(async () => {
  db = await createTestDatabase('partitioned_write');
  admin = await connectRedis();
});
afterAll(async () => {
  await deleteNamespace(admin, namespace);
  await admin?.close();
  await db?.drop();
});

describe.each(ADAPTERS)('a revoke over HTTP on an instance cut off from Redis (%s)', (adapter) => {
  let proxy: RedisProxy;
  let a: FullStack;
  let b: FullStack;
  let app: INestApplication;
  const lines: string[] = [];

  beforeAll(async () => {
    // The L1 and the bus log through Nest's static Logger: kept and asserted, not printed.
    for (const level of ['log', 'warn', 'error'] as const) {
      vi.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => void lines.push(`[${level}] ${String(message)}`));
    }
    proxy = await RedisProxy.start();
    const shared = { databaseUrl: db.url, namespace: `${namespace}${adapter}` };
    a = await startFullStack({ ...shared, redisUrl: proxy.url, logger: new CapturingLogger() });
    b = await startFullStack(shared);
    app = await bootApp(adapter, [
      // A long management bound: the refusal must come from the cache, not from this bound.
      ApiAuthModule.forRoot({ prefix: 'pw_', backend: a.backend, routes: true, verifyTimeoutMs: 30_000, trackUsage: false }),
    ]);
    app.useLogger(new CapturingLogger());
  });
  afterEach(() => proxy.restore());
  afterAll(async () => {
    proxy?.restore();
    await app?.close();
    await a?.close();
    await b?.close();
    await proxy?.close();
    vi.restoreAllMocks();
  });

  it('answers 503 backend_unavailable with Retry-After, stores nothing, and the retry on another instance revokes', async () => {
    const service = app.get(ApiKeyService);
    const operator = await service.issue({ ownerId: 'ops', name: 'operator', scopes: ['api-keys:admin'] });
    const target = await service.issue({ ownerId: 'o', name: 'target' });
    const server = app.getHttpServer();
    expect((await request(server).get('/t/me').set('X-API-Key', target.key)).status).toBe(200);

    proxy.hang();
    const refused = await request(server).post(`/api-keys/${target.apiKey.id}/revoke`).set('X-API-Key', operator.key);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      code: 'backend_unavailable',
      message: 'The API key store is temporarily unavailable. Retry later.',
    });
    const [row] = await db.query<{ revoked_at: Date | null }>('select revoked_at from api_keys where id = ?', [target.apiKey.id]);
    expect(row!.revoked_at).toBeNull();
    expect((await request(server).get('/t/me').set('X-API-Key', target.key)).status).toBe(200);

    // Another instance, which reaches Redis, takes the retry; this one then refuses the key
    // from PostgreSQL (its cache is off) once its L1 entry is gone.
    await b.backend.update(target.apiKey.id, { revokedAt: new Date(), updatedAt: new Date() });
    await a.backend.invalidate({ ids: [target.apiKey.id] });
    expect((await request(server).get('/t/me').set('X-API-Key', target.key)).status).toBe(401);
  });
});
