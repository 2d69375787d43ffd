import type { MikroORM } from '@mikro-orm/postgresql';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStatements } from '../../lib/mikro-orm/api-key.statements.js';
import { ApiKeyTable } from '../../lib/mikro-orm/api-key.table.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

const ROWS = 20_000;
const EXPIRED = 30;
const REVOKED = 20;

let db: TestDatabase;
let orm: MikroORM;
let backend: MikroOrmBackend;

beforeAll(async () => {
  db = await createTestDatabase('purge');
  orm = await initOrm(db.url);
  backend = new MikroOrmBackend(orm);
  await backend.ensureSchema();
  // Mostly live keys, a few long expired or revoked: the shape purge meets in production.
  await db.query(
    `insert into api_keys (id, name, owner_id, key_hash, hint, scopes, metadata, created_at, updated_at, expires_at, revoked_at)
     select gen_random_uuid(), 'k', 'owner-' || (n % 500), md5(n::text) || md5((n + 1)::text), 'sk_…', '[]', '{}', now(), now(),
       case when n <= ? then now() - interval '30 days' when n % 2 = 0 then now() + interval '30 days' end,
       case when n > ? and n <= ? then now() - interval '30 days' end
     from generate_series(1, ?) as n`,
    [EXPIRED, EXPIRED, EXPIRED + REVOKED, ROWS],
  );
  await db.query('analyze api_keys');
});
afterAll(async () => {
  await orm?.close(true);
  await db?.drop();
});

describe('MikroOrmBackend.purge on a table of mostly live keys', () => {
  const statements = new ApiKeyStatements(new ApiKeyTable('api_keys', undefined));
  const weekAgo = () => new Date(Date.now() - 7 * 86_400_000);

  it('finds each batch through the expires_at and revoked_at indexes, not a scan of the table', async () => {
    for (const [sql, index] of [
      [statements.purgeExpired, 'api_keys_expires_at_index'],
      [statements.purgeRevoked, 'api_keys_revoked_at_index'],
    ] as const) {
      const plan = (await db.query<{ 'QUERY PLAN': string }>(`explain ${sql}`, [weekAgo(), 100])).map((row) => row['QUERY PLAN']).join('\n');
      expect(plan).toContain(index);
      expect(plan).not.toMatch(/Seq Scan on api_keys/);
    }
  });

  it('deletes exactly the old expired and revoked rows, in batches, and nothing else', async () => {
    const counts: number[] = [];
    for (let more = true; more; ) {
      const deleted = await backend.purge({ expiredBefore: weekAgo(), revokedBefore: weekAgo(), limit: 16 });
      counts.push(deleted);
      more = deleted === 16;
    }
    expect(counts).toEqual([16, 16, 16, 2]);
    const [left] = await db.query<{ count: number }>('select count(*)::int as count from api_keys');
    expect(left!.count).toBe(ROWS - EXPIRED - REVOKED);
  });
});
