import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from 'nestjs-api-auth';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

// The sample app as `API_AUTH_BACKEND=postgres DATABASE_URL=... npm run sample` runs it.
describe('the sample app on API_AUTH_BACKEND=postgres', () => {
  let db: TestDatabase;
  let app: INestApplication;
  const saved = { backend: process.env.API_AUTH_BACKEND, url: process.env.DATABASE_URL };

  beforeAll(async () => {
    db = await createTestDatabase('sample');
    process.env.API_AUTH_BACKEND = 'postgres';
    process.env.DATABASE_URL = db.url;
    const { AppModule } = await import('../../sample/app.module.js');
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication();
    app.enableShutdownHooks();
    await app.init();
  });
  afterAll(async () => {
    await app?.close();
    process.env.API_AUTH_BACKEND = saved.backend;
    process.env.DATABASE_URL = saved.url;
    if (saved.backend === undefined) delete process.env.API_AUTH_BACKEND;
    if (saved.url === undefined) delete process.env.DATABASE_URL;
    await db?.drop();
  });

  it('creates the table, stores issued keys in it and authenticates with them', async () => {
    const { key, apiKey } = await app.get(ApiKeyService).issue({ ownerId: 'sample-user', name: 'k', scopes: ['reports:read'] });
    expect(await db.query('select id from api_keys')).toEqual([{ id: apiKey.id }]);
    await request(app.getHttpServer()).get('/hello').expect(401);
    const res = await request(app.getHttpServer()).get('/hello').set('X-API-Key', key).expect(200);
    expect(res.body).toEqual({ message: 'Hello, sample-user!' });
    await request(app.getHttpServer()).get('/reports').set('Authorization', `Bearer ${key}`).expect(200);
  });

  it('closes the ORM it opened when the app shuts down', async () => {
    await app.close();
    // The sample's ORM held the only other sessions on this database.
    const sessions = await db.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
    expect(sessions[0]!.n).toBe(0);
  });
});
