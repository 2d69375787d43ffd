import { createHash, randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

/** The key table as the first release created it: no environment, no policy. */
const FIRST_RELEASE_TABLE =
  'create table "api_keys" ("id" uuid not null, "name" varchar(255) not null, "owner_id" varchar(255) not null, ' +
  '"key_hash" varchar(128) not null, "hint" varchar(64) not null, "scopes" jsonb not null, "metadata" jsonb not null, ' +
  '"created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "expires_at" timestamptz(3) null, ' +
  '"revoked_at" timestamptz(3) null, "last_used_at" timestamptz(3) null, "rotated_from_id" uuid null, ' +
  'constraint "api_keys_pkey" primary key ("id"), constraint "api_keys_key_hash_unique" unique ("key_hash"))';

describe('importing into a key table of an earlier release (MikroORM, PostgreSQL)', () => {
  let db: TestDatabase;
  let orm: MikroORM;
  let service: ApiKeyService;
  let oldKey: string;

  beforeAll(async () => {
    db = await createTestDatabase('import_upgrade');
    await db.query(FIRST_RELEASE_TABLE);
    orm = await initOrm(db.url);
    service = new ApiKeyService(resolveApiAuthOptions({ prefix: 'up_', backend: new MikroOrmBackend(orm, { ensureSchema: true }), legacyKeyPrefixes: ['old_'] }));
    // A key the earlier release stored.
    oldKey = service.format.generate();
    await db.query(
      'insert into api_keys (id, name, owner_id, key_hash, hint, scopes, metadata, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, now(), now())',
      [randomUUID(), 'old', 'owner', sha256(oldKey), 'up_…', '["read"]', '{}'],
    );
  });
  afterAll(async () => {
    await orm?.close();
    await db?.drop();
  });

  it('ensureSchema adds the new nullable columns; old rows read as no environment and no policy', async () => {
    const record = await service.verify(oldKey);
    expect(record).toMatchObject({ name: 'old', environment: null, policy: null });
    const columns = await db.query<{ column_name: string; data_type: string }>(
      "select column_name, data_type from information_schema.columns where table_name = 'api_keys' and column_name in ('environment', 'policy') order by column_name",
    );
    expect(columns).toEqual([
      { column_name: 'environment', data_type: 'character varying' },
      { column_name: 'policy', data_type: 'jsonb' },
    ]);
  });

  it('imports legacy keys with a policy that PostgreSQL stores as jsonb', async () => {
    const legacy = 'old_Gg72mXq1Zr8Ts4Vn0Bw6';
    const view = await service.import({ key: legacy }, { ownerId: 'owner', name: 'legacy', policy: { allowedIps: ['10.0.0.0/8'], quota: { limit: 9 } } });
    expect((await service.verify(legacy))?.policy).toEqual({ allowedIps: ['10.0.0.0/8'], quota: { limit: 9 } });
    const [row] = await db.query<{ policy: unknown; environment: unknown }>('select policy, environment from api_keys where id = ?', [view.id]);
    expect(row).toEqual({ policy: { allowedIps: ['10.0.0.0/8'], quota: { limit: 9 } }, environment: null });
  });
});
