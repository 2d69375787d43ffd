import { Module, type INestApplication } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { PostgresRelay } from '../fixtures/postgres-relay.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { CapturingLogger } from '../fixtures/log-capture.js';

/** Calls until `accept` holds or `ms` pass; returns every status seen. */
async function pollUntil(send: () => Promise<{ status: number }>, accept: (status: number) => boolean, ms = 10_000) {
  const seen: number[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const { status } = await send();
    seen.push(status);
    if (accept(status) || Date.now() > deadline) return seen;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('outage');
});
afterAll(async () => {
  await db?.drop();
});

describe.each(ADAPTERS)('a PostgreSQL outage behind the guard over %s', (adapter) => {
  let relay: PostgresRelay;
  let orm: MikroORM;
  let app: INestApplication;
  let key: string;
  // The outage is logged (once per outage, as an error) on purpose here: kept and asserted.
  let logs: CapturingLogger;
  const outageLogged = () =>
    logs.lines.filter((line) => line.startsWith('[error] The API key backend is unavailable; answering 503: PostgreSQL is unavailable'));

  @Module({ providers: [{ provide: MikroORM, useFactory: () => orm }], exports: [MikroORM] })
  class OrmModule {}

  const call = () => request(app.getHttpServer()).get('/t/me').set('X-API-Key', key);

  beforeAll(async () => {
    relay = await PostgresRelay.start();
    orm = await initOrm(relay.via(db.url), {
      // What a production pool should have: fail fast instead of queueing for a minute.
      pool: { min: 0, max: 5, acquireTimeoutMillis: 2_000 },
      driverOptions: { connection: { connectionTimeoutMillis: 2_000 } },
    });
    app = await bootApp(adapter, [
      ApiAuthModule.forRootAsync({
        imports: [OrmModule],
        inject: [MikroORM],
        useFactory: (injected: MikroORM) => ({
          prefix: 'pg_',
          backend: new MikroOrmBackend(injected, { ensureSchema: true }),
          verifyTimeoutMs: 3_000,
        }),
      }),
    ]);
    logs = new CapturingLogger();
    app.useLogger(logs);
    ({ key } = await app.get(ApiKeyService).issue({ ownerId: `owner-${adapter}`, name: 'outage' }));
  });
  afterAll(async () => {
    await app?.close();
    await orm?.close();
    await relay?.stop();
  });

  it('answers 503 backend_unavailable while the database is unreachable, then 200 once it is back, without a restart', async () => {
    await call().expect(200);

    await relay.stop();
    for (let i = 0; i < 3; i++) {
      const res = await call();
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('backend_unavailable');
      expect(res.headers['retry-after']).toBe('1');
    }
    // Still no other answer: a down store never turns into "invalid key" or a crash.
    const publicRoute = await request(app.getHttpServer()).get('/t/open');
    expect(publicRoute.status).toBe(200);

    await relay.start();
    const seen = await pollUntil(call, (status) => status === 200);
    expect(seen.at(-1)).toBe(200);
    expect(outageLogged()).toHaveLength(1);
    expect(seen.every((status) => status === 200 || status === 503)).toBe(true);
  });

  it('starts while the database is down (ensureSchema on), answers 503, and creates the table once it is back', async () => {
    await relay.stop();
    // The application's ORM must not insist on connecting at init for the app to boot.
    const lateOrm = await initOrm(orm.config.getClientUrl(), { connect: false, pool: { min: 0, max: 2, acquireTimeoutMillis: 2_000 } });
    @Module({ providers: [{ provide: MikroORM, useFactory: () => lateOrm }], exports: [MikroORM] })
    class LateOrmModule {}
    const late = await bootApp(adapter, [
      ApiAuthModule.forRootAsync({
        imports: [LateOrmModule],
        inject: [MikroORM],
        useFactory: (injected: MikroORM) => ({
          prefix: 'pg_',
          backend: new MikroOrmBackend(injected, { ensureSchema: true, tableName: `late_keys_${adapter}` }),
        }),
      }),
    ]);
    // Booting a testing module resets Nest's logger: capture this app's lines too.
    late.useLogger(logs);
    const before = outageLogged().length;
    try {
      const unknownKey = late.get(ApiKeyService).format.generate();
      const callLate = (k: string) => request(late.getHttpServer()).get('/t/me').set('X-API-Key', k);
      const down = await callLate(unknownKey);
      expect(down.status).toBe(503);
      expect(outageLogged()).toHaveLength(before + 1);
      await relay.start();
      // 401 means PostgreSQL answered "no such key": the table exists now.
      const seen = await pollUntil(() => callLate(unknownKey), (status) => status === 401);
      expect(seen.at(-1)).toBe(401);
      expect(await db.query('select 1 from information_schema.tables where table_name = ?', [`late_keys_${adapter}`])).toHaveLength(1);
      const { key: lateKey } = await late.get(ApiKeyService).issue({ ownerId: 'late', name: 'late' });
      await callLate(lateKey).expect(200);
    } finally {
      await late.close();
      await lateOrm.close();
    }
  });

  it('survives PostgreSQL terminating its connections (pg_terminate_backend)', async () => {
    await call().expect(200);
    expect(await db.terminateConnections()).toBeGreaterThan(0);
    const seen = await pollUntil(call, (status) => status === 200);
    expect(seen.at(-1)).toBe(200);
    expect(seen.every((status) => status === 200 || status === 503)).toBe(true);
  });
});
