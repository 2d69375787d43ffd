import { createHash } from 'node:crypto';
import { Module, type INestApplication } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { captureProcessOutput } from '../fixtures/log-capture.js';
import { failFast, initOrm } from '../fixtures/mikro-orm.js';
import { PostgresRelay } from '../fixtures/postgres-relay.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { pollUntil } from '../fixtures/wait-for.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('lookup_outage');
});
afterAll(async () => {
  await db?.drop();
});

// The lookup pool of MikroORM 6 (`lookupPool`) through an outage: it takes the ORM's
// fail-fast connection settings, answers 503 while PostgreSQL is away, recovers on its
// own, survives its connections being terminated, and logs no key and no hash.
describe.each(ADAPTERS)('an outage behind the lookup pool over %s', (adapter) => {
  let relay: PostgresRelay;
  let orm: MikroORM;
  let app: INestApplication;
  let key: string;
  let output: ReturnType<typeof captureProcessOutput>;

  @Module({ providers: [{ provide: MikroORM, useFactory: () => orm }], exports: [MikroORM] })
  class OrmModule {}

  const call = () => request(app.getHttpServer()).get('/t/me').set('X-API-Key', key);
  const secrets = () => [key, createHash('sha256').update(key).digest('hex')];

  beforeAll(async () => {
    output = captureProcessOutput();
    relay = await PostgresRelay.start();
    // The ORM's `driverOptions.connection.connectionTimeoutMillis` applies to the lookup pool too.
    orm = await initOrm(relay.via(db.url), failFast(2_000));
    app = await bootApp(adapter, [
      ApiAuthModule.forRootAsync({
        imports: [OrmModule],
        inject: [MikroORM],
        useFactory: (injected: MikroORM) => ({
          prefix: 'lp_',
          backend: new MikroOrmBackend(injected, { ensureSchema: true, lookupPool: { max: 2 } }),
          verifyTimeoutMs: 3_000,
        }),
      }),
    ]);
    ({ key } = await app.get(ApiKeyService).issue({ ownerId: `owner-${adapter}`, name: 'lookup outage' }));
  });
  afterAll(async () => {
    await app?.close();
    await orm?.close();
    await relay?.stop();
    output?.restore();
  });

  it('answers 503 while the database is unreachable, then 200 once it is back, logging neither key nor hash', async () => {
    await call().expect(200);
    await relay.stop();
    for (let i = 0; i < 3; i++) {
      const res = await call();
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('backend_unavailable');
    }
    await relay.start();
    await pollUntil(async () => (await call()).status === 200, 'a 200', { attempts: 100, intervalMs: 100 });
    const refusals = output.lines.filter((line) => line.includes('answering 503'));
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.every((line) => /PostgreSQL is unavailable/.test(line))).toBe(true);
    for (const secret of secrets()) expect(output.lines.filter((line) => line.includes(secret))).toEqual([]);
  });

  it('survives PostgreSQL terminating its connections', async () => {
    await call().expect(200);
    expect(await db.terminateConnections()).toBeGreaterThan(0);
    await pollUntil(async () => (await call()).status === 200, 'a 200', { attempts: 100, intervalMs: 100 });
    for (const secret of secrets()) expect(output.lines.filter((line) => line.includes(secret))).toEqual([]);
  });
});
