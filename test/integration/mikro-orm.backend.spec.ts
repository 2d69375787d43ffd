import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { runBackendConformance } from 'nestjs-api-auth/testing';
import { initOrm, insertLegacyRow } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

// The contract, against real PostgreSQL, in a database created and dropped here.
let db: TestDatabase;
let orm: MikroORM;

beforeAll(async () => {
  db = await createTestDatabase('conformance');
  orm = await initOrm(db.url);
});
afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

const runner = { describe, it, beforeAll, afterAll };

runBackendConformance('MikroOrmBackend (default table, passed the MikroORM)', runner, {
  concurrency: 100,
  create: async () => {
    const backend = new MikroOrmBackend(orm);
    await backend.ensureSchema();
    return backend;
  },
  // A row written before `version` and `issued_by_id` existed.
  storeLegacyRecord: (_backend, record) => insertLegacyRow(db, record),
});

// A custom schema and table, given an EntityManager, with pages of 2 rows so every
// listing in the suite crosses several keyset pages.
runBackendConformance('MikroOrmBackend (schema "auth", table "keys", pageSize 2, passed an EntityManager)', runner, {
  create: () => new MikroOrmBackend(orm.em, { schema: 'auth', tableName: 'keys', pageSize: 2, ensureSchema: true }),
  storeLegacyRecord: (_backend, record) => insertLegacyRow(db, record, 'auth.keys'),
});
