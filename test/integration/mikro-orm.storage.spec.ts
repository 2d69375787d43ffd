import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { RequestContext, wrap, type MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiKeyNotFoundError,
  ApiKeyValidationError,
  BackendUnavailableError,
  DuplicateApiKeyError,
  type ApiKey,
} from 'nestjs-api-auth';
import { ApiKeyEntity, createApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { initOrm } from '../fixtures/mikro-orm.js';
import { captureStatements } from '../fixtures/pg-capture.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

let db: TestDatabase;
let orm: MikroORM;
let backend: MikroOrmBackend;

beforeAll(async () => {
  db = await createTestDatabase('storage');
  orm = await initOrm(db.url);
  backend = new MikroOrmBackend(orm, { ensureSchema: true });
  await backend.ensureSchema();
});
afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('the api_keys table', () => {
  it('has a uuid key, timestamptz dates, jsonb scopes and metadata, and no plaintext column', async () => {
    const columns = await db.query<{ column_name: string; data_type: string; is_nullable: string }>(
      "select column_name, data_type, is_nullable from information_schema.columns where table_name = 'api_keys' order by ordinal_position",
    );
    const types = Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]));
    expect(types).toEqual({
      id: 'uuid',
      name: 'character varying',
      owner_id: 'character varying',
      key_hash: 'character varying',
      hint: 'character varying',
      scopes: 'jsonb',
      metadata: 'jsonb',
      created_at: 'timestamp with time zone',
      updated_at: 'timestamp with time zone',
      expires_at: 'timestamp with time zone',
      revoked_at: 'timestamp with time zone',
      last_used_at: 'timestamp with time zone',
      rotated_from_id: 'uuid',
      environment: 'character varying',
      policy: 'jsonb',
      version: 'integer',
      issued_by_id: 'character varying',
      disabled_at: 'timestamp with time zone',
    });
  });

  it('has a primary key on id, a unique index on key_hash and an index on (owner_id, created_at, id)', async () => {
    const indexes = await db.query<{ indexname: string; indexdef: string }>(
      "select indexname, indexdef from pg_indexes where tablename = 'api_keys' order by indexname",
    );
    const defs = Object.fromEntries(indexes.map((i) => [i.indexname, i.indexdef]));
    expect(defs.api_keys_pkey).toMatch(/UNIQUE INDEX .* USING btree \(id\)/);
    expect(defs.api_keys_key_hash_unique).toMatch(/UNIQUE INDEX .* USING btree \(key_hash\)/);
    expect(defs.api_keys_owner_id_created_at_id_index).toMatch(/USING btree \(owner_id, created_at, id\)/);
    expect(defs.api_keys_created_at_id_index).toMatch(/USING btree \(created_at, id\)/);
  });

  it('ensureSchema creates exactly what the entity describes: the ORM sees nothing to migrate', async () => {
    expect(await orm.schema.getUpdateSchemaSQL({ wrap: false })).toBe('');

    // Both entities in one ORM (as an app with two key tables would), else the diff
    // would propose dropping the table it does not know.
    const entity = createApiKeyEntity({ schema: 'tenant_keys', tableName: 'keys', entityName: 'TenantApiKey' });
    const custom = await initOrm(db.url, { entities: [ApiKeyEntity, entity] });
    try {
      // Before: the ORM would create schema, table and index. After ensureSchema: nothing left.
      expect(await custom.schema.getUpdateSchemaSQL({ wrap: false })).toMatch(/create table "tenant_keys"."keys"/);
      await new MikroOrmBackend(custom, { schema: 'tenant_keys', tableName: 'keys' }).ensureSchema();
      expect(await custom.schema.getUpdateSchemaSQL({ wrap: false })).toBe('');
    } finally {
      await custom.close();
    }
  });

  it('ensureSchema is safe when many instances start at once', async () => {
    const orms = await Promise.all(Array.from({ length: 4 }, () => initOrm(db.url)));
    try {
      const backends = orms.map((o) => new MikroOrmBackend(o, { schema: 'raced', tableName: 'keys' }));
      await Promise.all(backends.flatMap((b) => [b.ensureSchema(), b.ensureSchema()]));
      const record = makeApiKeyRecord();
      await backends[0]!.create(record);
      expect((await backends[3]!.getByHash(record.keyHash))?.id).toBe(record.id);
    } finally {
      await Promise.all(orms.map((o) => o.close()));
    }
  });

  it('ensureSchema refuses a same-named table that is not a key table, naming the missing columns', async () => {
    await db.query('create table not_ours (id uuid primary key, name text)');
    const foreign = new MikroOrmBackend(orm, { tableName: 'not_ours' });
    await expect(foreign.ensureSchema()).rejects.toThrow(/not_ours" exists but lacks column\(s\) owner_id, key_hash/);
  });

  it('with ensureSchema on, the first operation creates the table (no explicit call needed)', async () => {
    const lazy = new MikroOrmBackend(orm, { tableName: 'lazy_keys', ensureSchema: true });
    expect(await lazy.getById(randomUUID())).toBeNull();
    expect(await db.query("select 1 from information_schema.tables where table_name = 'lazy_keys'")).toHaveLength(1);
  });
});

describe('MikroOrmBackend statements', () => {
  it('recordUsage is one conditional UPDATE, never a read-modify-write', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    const capture = captureStatements();
    try {
      const now = new Date();
      expect(await backend.recordUsage(record.id, now, new Date(now.getTime() - 60_000))).toBe(true);
    } finally {
      capture.stop();
    }
    expect(capture.statements).toHaveLength(1);
    expect(capture.statements[0]!.sql).toMatch(
      /^update "api_keys" set "last_used_at" = \$1::timestamptz where "id" = \$2::uuid and \("last_used_at" is null or "last_used_at" < \$3::timestamptz\)$/,
    );
  });

  it('update is one statement that writes only the given fields, sticky revocation and the version check inside it', async () => {
    const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const record = makeApiKeyRecord({ revokedAt, lastUsedAt: new Date(Date.now() - 1_000) });
    await backend.create(record);
    const capture = captureStatements();
    let updated: ApiKey;
    try {
      updated = await backend.update(record.id, { name: 'renamed', revokedAt: null, updatedAt: new Date() }, { expectedVersion: 1 });
    } finally {
      capture.stop();
    }
    expect(capture.statements).toHaveLength(1);
    const sql = capture.statements[0]!.sql;
    expect(sql).toMatch(/"revoked_at" = coalesce\(t\."revoked_at", \$\d+::timestamptz\)/);
    expect(sql).toMatch(/"version" = t\."version" \+ 1/);
    expect(sql).toMatch(/t\."version" = \$\d+::int/);
    for (const untouched of ['"scopes" =', '"metadata" =', '"expires_at" =', '"policy" =', '"last_used_at" =', '"owner_id" =']) {
      expect(sql).not.toContain(untouched);
    }
    expect(updated).toMatchObject({ name: 'renamed', revokedAt, lastUsedAt: record.lastUsedAt, version: 2 });
  });

  it('key hashes are bound parameters, never part of the statement text', async () => {
    const record = makeApiKeyRecord();
    const capture = captureStatements();
    try {
      await backend.create(record);
      await backend.getByHash(record.keyHash);
    } finally {
      capture.stop();
    }
    expect(capture.statements).toHaveLength(2);
    for (const statement of capture.statements) {
      expect(statement.sql).not.toContain(record.keyHash);
      expect(statement.bindings).toContain(record.keyHash);
    }
  });

  it('streams 100,000 keys of one owner in keyset pages, never holding more than one page', async () => {
    const ownerId = `bulk-${randomUUID()}`;
    // Only 500 distinct created_at values: most page boundaries fall inside a tie, which
    // only the id part of the (created_at, id) cursor resolves.
    await db.query(
      `insert into api_keys (id, name, owner_id, key_hash, hint, scopes, metadata, created_at, updated_at)
       select gen_random_uuid(), 'bulk', ?, md5(i::text || ?) || md5(i::text), 'sk_…bulk', '[]', '{}',
              timestamptz '2024-01-01T00:00:00Z' + (i % 500) * interval '1 ms', now()
       from generate_series(1, 100000) as i`,
      [ownerId, ownerId],
    );
    // What autovacuum would do after a bulk load; without statistics the planner sorts.
    await db.query('analyze api_keys');
    const paged = new MikroOrmBackend(orm, { pageSize: 1000 });
    const capture = captureStatements();
    let count = 0;
    let previous: ApiKey | undefined;
    let outOfOrder = 0;
    const ids = new Set<string>();
    const started = performance.now();
    try {
      for await (const record of paged.listByOwner(ownerId)) {
        if (previous) {
          const order = record.createdAt.getTime() - previous.createdAt.getTime() || (record.id > previous.id ? 1 : -1);
          if (order <= 0) outOfOrder++;
        }
        ids.add(record.id);
        previous = record;
        count++;
      }
    } finally {
      capture.stop();
    }
    const elapsed = performance.now() - started;
    expect(count).toBe(100_000);
    expect(outOfOrder).toBe(0);
    expect(ids.size).toBe(100_000);
    expect(capture.statements).toHaveLength(100);
    expect(Math.max(...capture.rowCounts)).toBeLessThanOrEqual(1001);
    expect(await paged.countByOwner(ownerId)).toBe(100_000);
    // Each page is a walk along the (owner_id, created_at, id) index, not a sort of the owner's keys.
    const { sql, bindings } = capture.statements[50]!;
    const [plan] = await db.query<{ 'QUERY PLAN': unknown }>(`explain (format json) ${sql.replace(/\$\d+/g, '?')}`, bindings);
    const planText = JSON.stringify(plan!['QUERY PLAN']);
    expect(planText).toContain('"Index Name":"api_keys_owner_id_created_at_id_index"');
    expect(planText).not.toContain('"Node Type":"Sort"');
    console.log(`listByOwner streamed 100,000 keys in ${capture.statements.length} pages, ${elapsed.toFixed(0)} ms`);
  }, 60_000);

  it('listPageByOwner pages for application code, with a cursor to resume', async () => {
    const ownerId = `owner-${randomUUID()}`;
    const records = Array.from({ length: 5 }, (_, i) =>
      makeApiKeyRecord({ ownerId, createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, i)) }),
    );
    for (const r of records) await backend.create(r);
    const first = await backend.listPageByOwner(ownerId, { limit: 2 });
    expect(first.items.map((r) => r.id)).toEqual(records.slice(0, 2).map((r) => r.id));
    expect(first.next).toEqual({ createdAt: records[1]!.createdAt, id: records[1]!.id });
    const second = await backend.listPageByOwner(ownerId, { limit: 3, after: first.next! });
    expect(second.items.map((r) => r.id)).toEqual(records.slice(2).map((r) => r.id));
    expect(second.next).toBeNull();
    await expect(backend.listPageByOwner(ownerId, { after: { createdAt: new Date(), id: 'x' } })).rejects.toThrow(
      ApiKeyValidationError,
    );
  });
});

describe('MikroOrmBackend inputs and errors', () => {
  it('treats ids that are not UUIDs as unknown rather than failing in PostgreSQL', async () => {
    expect(await backend.getById('not-a-uuid')).toBeNull();
    expect(await backend.recordUsage('not-a-uuid', new Date(), new Date())).toBe(false);
    await expect(backend.delete('not-a-uuid')).resolves.toBeUndefined();
    await expect(backend.update('not-a-uuid', { name: 'n', updatedAt: new Date() })).rejects.toThrow(ApiKeyNotFoundError);
    await expect(backend.create(makeApiKeyRecord({ id: 'not-a-uuid' }))).rejects.toThrow(ApiKeyValidationError);
  });

  it('a duplicate hash is DuplicateApiKeyError with no trace of the hash, even in its inspected form', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    const error = await backend.create(makeApiKeyRecord({ keyHash: record.keyHash })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateApiKeyError);
    expect((error as DuplicateApiKeyError).field).toBe('keyHash');
    expect(inspect(error, { depth: 10 })).not.toContain(record.keyHash);
  });

  it('a statement PostgreSQL rejects is BackendUnavailableError that names the cause, not the hash', async () => {
    const missing = new MikroOrmBackend(orm, { tableName: 'no_such_table' });
    const hash = makeApiKeyRecord().keyHash;
    const error = await missing.getByHash(hash).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toContain('relation "no_such_table" does not exist');
    expect(inspect(error, { depth: 10 })).not.toContain(hash);
  });

  it('an unreachable server is BackendUnavailableError on every operation', async () => {
    const down = await initOrm('postgresql://postgres@127.0.0.1:1/postgres', { connect: false });
    try {
      const unreachable = new MikroOrmBackend(down);
      const record = makeApiKeyRecord();
      const operations: Array<() => Promise<unknown>> = [
        () => unreachable.getByHash(record.keyHash),
        () => unreachable.getById(record.id),
        () => unreachable.create(record),
        () => unreachable.update(record.id, { name: 'n', updatedAt: new Date() }, { expectedVersion: 1 }),
        () => collect(unreachable.listByIssuer(record.id)),
        () => unreachable.delete(record.id),
        () => unreachable.recordUsage(record.id, new Date(), new Date()),
        () => unreachable.countByOwner(record.ownerId),
        () => collect(unreachable.listByOwner(record.ownerId)),
      ];
      for (const operation of operations) {
        const error = await operation().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error as Error).message).toMatch(/PostgreSQL is unavailable: .*ECONNREFUSED/);
        expect(inspect(error, { depth: 10 })).not.toContain(record.keyHash);
      }
    } finally {
      await down.close();
    }
  });

  it('rejects bad configuration at construction, naming the option', () => {
    expect(() => new MikroOrmBackend(orm, { tableName: 'api_keys; drop table x' })).toThrow(/tableName must be a plain SQL identifier/);
    expect(() => new MikroOrmBackend(orm, { schema: '"quoted"' })).toThrow(/schema must be a plain SQL identifier/);
    expect(() => new MikroOrmBackend(orm, { pageSize: 0 })).toThrow(/pageSize/);
    expect(() => new MikroOrmBackend({} as MikroORM)).toThrow(/needs a MikroORM instance or an EntityManager/);
  });
});

describe('MikroOrmBackend with the application ORM', () => {
  it('works where the ORM forbids the global context, inside and outside a request context', async () => {
    // The fixture ORM has allowGlobalContext: false, so this is what a guard outside a request scope would hit.
    await expect(orm.em.find(ApiKeyEntity, {})).rejects.toThrow(/global EntityManager instance/);
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect((await backend.getByHash(record.keyHash))?.id).toBe(record.id);
    await RequestContext.create(orm.em, async () => {
      expect((await backend.getById(record.id))?.id).toBe(record.id);
    });
  });

  it('ApiKeyEntity reads the same rows through the ORM, and serialising it leaves the hash out', async () => {
    const record = makeApiKeyRecord({ scopes: ['a', 'b'], expiresAt: new Date(Date.now() + 60_000) });
    await backend.create(record);
    const em = orm.em.fork();
    const entity = await em.findOneOrFail(ApiKeyEntity, { id: record.id });
    expect(entity.ownerId).toBe(record.ownerId);
    expect(entity.scopes).toEqual(['a', 'b']);
    expect(entity.expiresAt).toEqual(record.expiresAt);
    expect(entity.keyHash).toBe(record.keyHash);
    const serialised = JSON.stringify(wrap(entity).toObject());
    expect(serialised).toContain(record.id);
    expect(serialised).not.toContain(record.keyHash);
  });
});
