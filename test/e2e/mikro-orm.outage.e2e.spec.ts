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

/**
 * Calls until `accept` holds or `attempts` calls were made; returns every status seen.
 * Bounded by a count, not a deadline: a busy machine makes it slower, never shorter.
 */
async function pollUntil(send: () => Promise<{ status: number }>, accept: (status: number) => boolean, attempts = 100) {
  const seen: number[] = [];
  for (;;) {
    const { status } = await send();
    seen.push(status);
    if (accept(status) || seen.length >= attempts) return seen;
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
  // The outage's expected ERROR lines (Nest's logger, and the driver's own console
  // output on MikroORM 6), kept for assertions rather than printed.
  let output: ReturnType<typeof captureProcessOutput>;

  @Module({ providers: [{ provide: MikroORM, useFactory: () => orm }], exports: [MikroORM] })
  class OrmModule {}

  const call = () => request(app.getHttpServer()).get('/t/me').set('X-API-Key', key);

  beforeAll(async () => {
    output = captureProcessOutput();
    relay = await PostgresRelay.start();
    // What a production pool should have: fail fast instead of queueing for a minute.
    orm = await initOrm(relay.via(db.url), failFast(2_000));
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
    ({ key } = await app.get(ApiKeyService).issue({ ownerId: `owner-${adapter}`, name: 'outage' }));
  });
  afterAll(async () => {
    await app?.close();
    await orm?.close();
    await relay?.stop();
    output?.restore();
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
    expect(seen.every((status) => status === 200 || status === 503)).toBe(true);
    const errors = output.lines.filter((line) => line.includes('answering 503'));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((line) => /PostgreSQL is unavailable/.test(line))).toBe(true);
    expect(output.lines.filter((line) => line.includes(key))).toEqual([]);
  });

  it('starts while the database is down (ensureSchema on), answers 503, and creates the table once it is back', async () => {
    await relay.stop();
    // The application's ORM must not insist on connecting at init for the app to boot.
    const lateOrm = await initOrm(orm.config.get('clientUrl')!, { connect: false, ...failFast(2_000, 2) });
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
    try {
      const unknownKey = late.get(ApiKeyService).format.generate();
      const callLate = (k: string) => request(late.getHttpServer()).get('/t/me').set('X-API-Key', k);
      const down = await callLate(unknownKey);
      expect(down.status).toBe(503);
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
