import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Migrator } from '@mikro-orm/migrations';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

// The "migrations" path of the docs, end to end: the user's ORM with ApiKeyEntity in
// its entities and the Migrator extension, `migration:create`, `migration:up`.
describe('ApiKeyEntity with the MikroORM migrator', () => {
  let db: TestDatabase;
  let orm: MikroORM;
  // Inside the repository so the generated CommonJS file resolves @mikro-orm/migrations
  // from node_modules; its own package.json makes `.js` CommonJS there.
  const dir = fileURLToPath(new URL(`../../node_modules/.cache/api-auth-migrations-${randomBytes(4).toString('hex')}/`, import.meta.url));

  beforeAll(async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(`${dir}package.json`, '{ "type": "commonjs" }\n');
    db = await createTestDatabase('migration');
    orm = await initOrm(db.url, {
      entities: [ApiKeyEntity],
      extensions: [Migrator],
      migrations: { path: dir, emit: 'js', snapshot: false, silent: true },
    });
  });
  afterAll(async () => {
    await orm?.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('generates a migration that creates the table, its unique hash and owner index', async () => {
    const result = await orm.migrator.createMigration();
    const up = result.diff.up.join('\n');
    expect(up).toContain('create table "api_keys" ("id" uuid not null');
    expect(up).toContain('"scopes" jsonb not null, "metadata" jsonb not null');
    expect(up).toContain('"created_at" timestamptz(3) not null');
    expect(up).toContain('create index "api_keys_owner_id_created_at_id_index" on "api_keys" ("owner_id", "created_at", "id")');
    expect(up).toContain('add constraint "api_keys_key_hash_unique" unique ("key_hash")');
    expect(up).not.toMatch(/plain|secret/i);
    const files = (await readdir(dir)).filter((f) => f.startsWith('Migration'));
    expect(files).toEqual([result.fileName]);
    expect(await readFile(`${dir}${result.fileName}`, 'utf8')).toContain('class Migration');
  });

  it('applies to the fresh database, after which the backend works without ensureSchema', async () => {
    const applied = await orm.migrator.up();
    expect(applied).toHaveLength(1);
    const backend = new MikroOrmBackend(orm);
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    // Nothing left to migrate, and ensureSchema on a migrated database changes nothing.
    expect(await orm.schema.getUpdateSchemaSQL({ wrap: false })).toBe('');
    await backend.ensureSchema();
    expect(await orm.schema.getUpdateSchemaSQL({ wrap: false })).toBe('');
    expect((await orm.migrator.createMigration()).diff.up).toEqual([]);
  });

  it('rolls back: down() drops the table again', async () => {
    await orm.migrator.down();
    expect(await db.query("select 1 from information_schema.tables where table_name = 'api_keys'")).toEqual([]);
  });
});
