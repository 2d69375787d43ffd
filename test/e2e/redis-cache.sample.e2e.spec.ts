import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from 'nestjs-api-auth';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';

// The sample app as `API_AUTH_BACKEND=cached DATABASE_URL=... REDIS_URL=... npm run sample` runs it.
describe('the sample app on API_AUTH_BACKEND=cached (Redis in front of PostgreSQL)', () => {
  const namespace = uniqueNamespace('redis-cache-sample');
  const saved = { backend: process.env.API_AUTH_BACKEND, url: process.env.DATABASE_URL, ns: process.env.REDIS_NAMESPACE };
  let db: TestDatabase;
  let app: INestApplication;
  let raw: Awaited<ReturnType<typeof connectRedis>>;

  beforeAll(async () => {
    db = await createTestDatabase('sample_cached');
    raw = await connectRedis();
    process.env.API_AUTH_BACKEND = 'cached';
    process.env.DATABASE_URL = db.url;
    process.env.REDIS_NAMESPACE = namespace;
    const { AppModule } = await import('../../sample/app.module.js');
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication();
    app.enableShutdownHooks();
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    for (const [name, value] of [
      ['API_AUTH_BACKEND', saved.backend],
      ['DATABASE_URL', saved.url],
      ['REDIS_NAMESPACE', saved.ns],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await deleteNamespace(raw, namespace);
    await raw?.close();
    await db?.drop();
  });

  it('stores keys in PostgreSQL, caches them in Redis, and refuses a revoked key at once', async () => {
    const service = app.get(ApiKeyService);
    const { key, apiKey } = await service.issue({ ownerId: 'sample-user', name: 'k', scopes: ['reports:read'] });
    expect(await db.query('select id from api_keys')).toEqual([{ id: apiKey.id }]);
    await request(app.getHttpServer()).get('/hello').set('X-API-Key', key).expect(200);
    const res = await request(app.getHttpServer()).get('/hello').set('X-API-Key', key).expect(200);
    expect(res.body).toEqual({ message: 'Hello, sample-user!' });
    expect((await scanKeys(raw, namespace)).some((name) => name.endsWith(':r'))).toBe(true);

    await service.revoke(apiKey.id);
    const refused = await request(app.getHttpServer()).get('/hello').set('X-API-Key', key).expect(401);
    expect(refused.body.code).toBe('revoked_api_key');
  });

  it('closes the ORM it opened when the app shuts down', async () => {
    await app.close();
    const sessions = await db.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
    expect(sessions[0]!.n).toBe(0);
  });
});
