import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { initOrm } from '../fixtures/mikro-orm.js';
import { captureStatements } from '../fixtures/pg-capture.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

// The admin listing across owners on real PostgreSQL: a keyset walk, newest first, on
// the (created_at, id) index, with the filters in the statement.
let db: TestDatabase;
let orm: MikroORM;

beforeAll(async () => {
  db = await createTestDatabase('list-all');
  orm = await initOrm(db.url);
  await new MikroOrmBackend(orm).ensureSchema();
  // 20,000 keys of 50 owners, with 200 distinct created_at values: most page
  // boundaries fall inside a tie, which only the id part of the cursor resolves. Every
  // tenth key is disabled, every seventh revoked.
  await db.query(
    `insert into api_keys (id, name, owner_id, key_hash, hint, scopes, metadata, created_at, updated_at, disabled_at, revoked_at)
     select gen_random_uuid(), 'bulk', 'owner-' || (i % 50), md5(i::text) || md5('x' || i::text), 'sk_…bulk', '[]', '{}',
            timestamptz '2024-01-01T00:00:00Z' + (i % 200) * interval '1 ms', now(),
            case when i % 10 = 0 then now() end, case when i % 7 = 0 then now() end
     from generate_series(1, 20000) as i`,
  );
  await db.query('analyze api_keys');
});
afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

const planOf = async (statement: { sql: string; bindings: unknown[] }) => {
  const [plan] = await db.query<{ 'QUERY PLAN': unknown }>(`explain (format json) ${statement.sql.replace(/\$\d+/g, '?')}`, statement.bindings);
  return JSON.stringify(plan!['QUERY PLAN']);
};

describe('MikroOrmBackend.listAll', () => {
  it('streams every owner\'s keys newest first in keyset pages walking the (created_at, id) index backwards', async () => {
    const backend = new MikroOrmBackend(orm, { pageSize: 1000 });
    const capture = captureStatements();
    let previous: ApiKey | undefined;
    let outOfOrder = 0;
    const ids = new Set<string>();
    try {
      for await (const record of backend.listAll({ now: new Date() })) {
        if (previous) {
          const order = previous.createdAt.getTime() - record.createdAt.getTime() || (previous.id > record.id ? 1 : -1);
          if (order <= 0) outOfOrder++;
        }
        ids.add(record.id);
        previous = record;
      }
    } finally {
      capture.stop();
    }
    expect(ids.size).toBe(20_000);
    expect(outOfOrder).toBe(0);
    // 20 full pages and the empty one that ends the walk.
    expect(capture.statements).toHaveLength(21);
    expect(Math.max(...capture.rowCounts)).toBeLessThanOrEqual(1000);
    const plan = await planOf(capture.statements[10]!);
    expect(plan).toContain('"Index Name":"api_keys_created_at_id_index"');
    expect(plan).toContain('"Scan Direction":"Backward"');
    expect(plan).not.toContain('"Node Type":"Sort"');
  });

  it('filters by owner on the owner index and by status in the statement', async () => {
    const backend = new MikroOrmBackend(orm, { pageSize: 100 });
    const capture = captureStatements();
    let owned: ApiKey[] = [];
    let disabled = 0;
    try {
      for await (const record of backend.listAll({ ownerId: 'owner-3', now: new Date() })) owned.push(record);
      for await (const record of backend.listAll({ status: 'disabled', now: new Date() })) {
        expect(record.disabledAt).not.toBeNull();
        expect(record.revokedAt).toBeNull();
        disabled++;
      }
    } finally {
      capture.stop();
    }
    expect(owned).toHaveLength(400);
    expect(owned.every((r) => r.ownerId === 'owner-3')).toBe(true);
    owned = [];
    // i % 10 == 0 and i % 7 != 0: 2000 multiples of 10, less the 285 multiples of 70.
    expect(disabled).toBe(2000 - 285);
    expect(await planOf(capture.statements[1]!)).toContain('"Index Name":"api_keys_owner_id_created_at_id_index"');
  });
});
