import { ConsoleLogger, Logger, Module } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, API_KEY_BACKEND, BackendUnavailableError } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { makeApiKeyRecord, runBackendConformance } from 'nestjs-api-auth/testing';
import { bootApp } from '../fixtures/app.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { initOrm, insertLegacyRow } from '../fixtures/mikro-orm.js';
import { captureStatements } from '../fixtures/pg-capture.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { pollUntil } from '../fixtures/wait-for.js';

// MikroORM 6's `lookupPool`: key lookups on a `pg` pool of the backend's own, every
// other statement on the ORM's. (The compatibility suite, on MikroORM 7, does not run
// this file: 7 ignores the option.)
let db: TestDatabase;
let orm: MikroORM;

/** Connections to this file's database opened by the lookup pool. */
const lookupConnections = async () =>
  Number(
    (
      await db.query<{ n: string }>(
        "select count(*) as n from pg_stat_activity where datname = ? and application_name = 'nestjs-api-auth lookups'",
        [db.name],
      )
    )[0]!.n,
  );

beforeAll(async () => {
  db = await createTestDatabase('lookup_pool');
  orm = await initOrm(db.url);
  await new MikroOrmBackend(orm).ensureSchema();
});
afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

describe('the conformance suite', () => {
  const opened: MikroOrmBackend[] = [];
  // Before the tests below count the lookup pool's connections.
  afterAll(async () => {
    for (const backend of opened) await backend.close();
  });

  runBackendConformance('MikroOrmBackend with lookupPool', { describe, it, beforeAll, afterAll }, {
    concurrency: 100,
    create: () => {
      const backend = new MikroOrmBackend(orm, { lookupPool: { max: 3 } });
      opened.push(backend);
      return backend;
    },
    storeLegacyRecord: (_backend, record) => insertLegacyRow(db, record),
  });
});

describe('MikroOrmBackend lookupPool', () => {
  it('looks keys up on its own connections, bound by the server, and writes through the ORM', async () => {
    const backend = new MikroOrmBackend(orm, { lookupPool: { max: 2 } });
    const record = makeApiKeyRecord();
    expect(await lookupConnections()).toBe(0);
    // Writes do not open the lookup pool.
    await backend.create(record);
    expect(await lookupConnections()).toBe(0);
    const capture = captureStatements();
    try {
      await Promise.all(Array.from({ length: 10 }, () => backend.getByHash(record.keyHash)));
      expect(await backend.getByHash(record.keyHash)).toEqual(record);
    } finally {
      capture.stop();
    }
    const lookups = capture.statements.filter((s) => s.bindings[0] === record.keyHash);
    expect(lookups).toHaveLength(11);
    expect(lookups.every((s) => !s.sql.includes(record.keyHash) && s.sql.includes('where key_hash=$1'))).toBe(true);
    const open = await lookupConnections();
    expect(open).toBeGreaterThanOrEqual(1);
    expect(open).toBeLessThanOrEqual(2);
    await backend.close();
  });

  it('close() ends its connections, and later lookups fail as unavailable while the ORM keeps working', async () => {
    const backend = new MikroOrmBackend(orm, { lookupPool: true });
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    expect(await lookupConnections()).toBe(1);
    await backend.close();
    expect(await lookupConnections()).toBe(0);
    await expect(backend.getByHash(record.keyHash)).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(await backend.getById(record.id)).toEqual(record);
    expect(await new MikroOrmBackend(orm).getByHash(record.keyHash)).toEqual(record);
  });

  it('is closed by Nest when the application closes; the ORM is not', async () => {
    @Module({ providers: [{ provide: MikroORM, useFactory: () => orm }], exports: [MikroORM] })
    class OrmModule {}
    const app = await bootApp('express', [
      ApiAuthModule.forRootAsync({
        imports: [OrmModule],
        inject: [MikroORM],
        useFactory: (injected: MikroORM) => ({ prefix: 'lp_', backend: new MikroOrmBackend(injected, { lookupPool: true }) }),
      }),
    ]);
    const backend = app.get<MikroOrmBackend>(API_KEY_BACKEND);
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    expect(await lookupConnections()).toBe(1);
    await app.close();
    expect(await lookupConnections()).toBe(0);
    expect(await orm.isConnected()).toBe(true);
  });

  it('reports a lookup connection the server drops with a warning (no crash), and replaces it', async () => {
    const backend = new MikroOrmBackend(orm, { lookupPool: true });
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    const logs = new CapturingLogger();
    Logger.overrideLogger(logs);
    try {
      await db.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'nestjs-api-auth lookups' and datname = ?", [
        db.name,
      ]);
      await pollUntil(() => logs.lines.length > 0, 'the warning');
    } finally {
      Logger.overrideLogger(new ConsoleLogger());
    }
    expect(logs.lines).toEqual(['[warn] A lookup connection to PostgreSQL failed: terminating connection due to administrator command ApiAuth']);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    await backend.close();
  });

  it('refuses bad settings at construction, naming the option', () => {
    expect(() => new MikroOrmBackend(orm, { lookupPool: { max: 0 } })).toThrow(/lookupPool\.max must be an integer from 1 to 100/);
    expect(() => new MikroOrmBackend(orm, { lookupPool: { idleTimeoutMillis: -1 } })).toThrow(/lookupPool\.idleTimeoutMillis/);
    expect(() => new MikroOrmBackend(orm, { lookupPool: { maxx: 2 } as never })).toThrow(/lookupPool\.maxx/);
    expect(() => new MikroOrmBackend(orm, { lookupPool: 'yes' as never })).toThrow(/lookupPool must be a boolean or an object/);
  });
});
