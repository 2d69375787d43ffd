import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { initOrm } from '../../../test/fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../../../test/fixtures/postgres.js';

// MikroORM 7 looks keys up on the ORM's own `pg` pool: `lookupPool` (MikroORM 6's
// remedy for knex's per-query work) is accepted and opens nothing of its own.
let db: TestDatabase;
let orm: MikroORM;

beforeAll(async () => {
  db = await createTestDatabase('compat_lookup_pool');
  orm = await initOrm(db.url);
});
afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

describe('lookupPool on MikroORM 7', () => {
  it('is accepted and ignored: lookups work, and no connection of its own is opened', async () => {
    const backend = new MikroOrmBackend(orm, { lookupPool: { max: 2 }, ensureSchema: true });
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    const own = await db.query("select 1 from pg_stat_activity where datname = ? and application_name = 'nestjs-api-auth lookups'", [db.name]);
    expect(own).toEqual([]);
    await backend.close();
    // close() ends only what the backend opened: the ORM's pool keeps answering.
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
  });
});
