import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyNotFoundError, ApiKeyValidationError, BackendUnavailableError, VersionConflictError } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { initOrm } from '../fixtures/mikro-orm.js';
import { captureStatements } from '../fixtures/pg-capture.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

// The versioned, partial `update` and `listByIssuer` of the store contract, on real
// PostgreSQL: what one statement decides, and what concurrent writers end with.
let db: TestDatabase;
let orm: MikroORM;
let backend: MikroOrmBackend;

beforeAll(async () => {
  db = await createTestDatabase('update');
  orm = await initOrm(db.url);
  backend = new MikroOrmBackend(orm, { pageSize: 2 });
  await backend.ensureSchema();
});
afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

const later = (ms = 1_000) => new Date(Math.floor(Date.now() / 1000) * 1000 + ms);

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('MikroOrmBackend.update', () => {
  it('writes only the given fields, bumps version by one and returns the stored record', async () => {
    const record = makeApiKeyRecord({ expiresAt: later(3_600_000) });
    await backend.create(record);
    const updatedAt = later();
    const updated = await backend.update(record.id, { name: 'renamed', updatedAt });
    expect(updated).toEqual({ ...record, name: 'renamed', updatedAt, version: 2 });
    expect(await backend.getById(record.id)).toEqual(updated);
    const again = await backend.update(record.id, { scopes: ['a'], metadata: { m: 1 }, expiresAt: null, updatedAt });
    expect(again).toEqual({ ...updated, scopes: ['a'], metadata: { m: 1 }, expiresAt: null, version: 3 });
  });

  it('ignores keys whose value is undefined, and refuses fields that are immutable', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    const updated = await backend.update(record.id, { name: undefined, scopes: ['x'], updatedAt: later() });
    expect(updated.name).toBe(record.name);
    expect(updated.scopes).toEqual(['x']);
    for (const field of ['ownerId', 'keyHash', 'version', 'createdAt']) {
      await expect(backend.update(record.id, { [field]: 'x', updatedAt: later() } as never)).rejects.toMatchObject({
        constructor: ApiKeyValidationError,
        field,
      });
    }
    await expect(backend.update(record.id, { name: 'n' } as never)).rejects.toMatchObject({ field: 'updatedAt' });
    expect((await backend.getById(record.id))!.version).toBe(2);
  });

  it('with a matching expectedVersion writes; with a stale one rejects with the stored version and writes nothing', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect((await backend.update(record.id, { name: 'v2', updatedAt: later() }, { expectedVersion: 1 })).version).toBe(2);
    const error = await backend.update(record.id, { name: 'stale', updatedAt: later(5_000) }, { expectedVersion: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VersionConflictError);
    expect(error).toMatchObject({ id: record.id, expectedVersion: 1, actualVersion: 2 });
    expect((error as Error).message).not.toContain(record.keyHash);
    const stored = await backend.getById(record.id);
    expect(stored).toMatchObject({ name: 'v2', version: 2 });
  });

  it('tells an unknown id (ApiKeyNotFoundError) from a conflict, with or without expectedVersion', async () => {
    await expect(backend.update(randomUUID(), { name: 'x', updatedAt: later() })).rejects.toBeInstanceOf(ApiKeyNotFoundError);
    await expect(backend.update(randomUUID(), { name: 'x', updatedAt: later() }, { expectedVersion: 1 })).rejects.toBeInstanceOf(
      ApiKeyNotFoundError,
    );
    await expect(backend.update('not-a-uuid', { name: 'x', updatedAt: later() })).rejects.toBeInstanceOf(ApiKeyNotFoundError);
    await expect(backend.update(randomUUID(), { name: 'x', updatedAt: later() }, { expectedVersion: 0 })).rejects.toBeInstanceOf(
      ApiKeyValidationError,
    );
  });

  it('keeps the first revocation: a later revokedAt, or null, leaves it while the other changes apply', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    const first = later();
    await backend.update(record.id, { revokedAt: first, updatedAt: first });
    const second = await backend.update(record.id, { revokedAt: later(9_000), name: 'after', updatedAt: later(9_000) });
    expect(second).toMatchObject({ revokedAt: first, name: 'after', version: 3 });
    const cleared = await backend.update(record.id, { revokedAt: null, updatedAt: later(10_000) });
    expect(cleared.revokedAt).toEqual(first);
  });

  it('concurrent updates of different fields both survive, each adding one to version', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    const writers = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? backend.update(record.id, { name: `name-${i}`, updatedAt: later() })
        : backend.update(record.id, { metadata: { writer: i }, updatedAt: later() }),
    );
    await Promise.all(writers);
    const stored = (await backend.getById(record.id))!;
    expect(stored.version).toBe(21);
    expect(stored.name).toMatch(/^name-\d+$/);
    expect(stored.metadata).toMatchObject({ writer: expect.any(Number) });
  });

  it('of 30 writers racing with the same expectedVersion exactly one wins; the rest see its version', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => backend.update(record.id, { name: `w${i}`, updatedAt: later() }, { expectedVersion: 1 })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(29);
    for (const r of lost) expect(r.reason).toMatchObject({ constructor: VersionConflictError, actualVersion: 2 });
    expect((await backend.getById(record.id))!.version).toBe(2);
  });

  it('recordUsage never changes version', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    expect(await backend.recordUsage(record.id, new Date(), new Date(Date.now() - 60_000))).toBe(true);
    expect((await backend.getById(record.id))!.version).toBe(1);
  });

  it('sends no value in the statement text, not the key hash nor a changed field', async () => {
    const record = makeApiKeyRecord();
    await backend.create(record);
    const capture = captureStatements();
    try {
      await backend.update(record.id, { name: 'secret-looking-name', updatedAt: later() }, { expectedVersion: 1 });
    } finally {
      capture.stop();
    }
    expect(capture.statements).toHaveLength(1);
    expect(capture.statements[0]!.sql).not.toContain('secret-looking-name');
    expect(capture.statements[0]!.sql).not.toContain(record.id);
  });
});

describe('MikroOrmBackend create and listByIssuer', () => {
  it('stores version and issuedById as given; a record without them stores version 1, issued by nobody', async () => {
    const issuer = makeApiKeyRecord();
    const minted = makeApiKeyRecord({ issuedById: issuer.id, version: 1 });
    expect(await backend.create(issuer)).toEqual(issuer);
    expect(await backend.create(minted)).toEqual(minted);
    const { version: _v, issuedById: _i, ...legacy } = makeApiKeyRecord();
    expect(await backend.create(legacy as never)).toMatchObject({ version: 1, issuedById: null });
    await expect(backend.create(makeApiKeyRecord({ issuedById: 'x'.repeat(65) }))).rejects.toMatchObject({ field: 'issuedById' });
    await expect(backend.create(makeApiKeyRecord({ version: 1.5 }))).rejects.toMatchObject({ field: 'version' });
  });

  it('reads dates back to the millisecond, before 1970 and far ahead alike', async () => {
    const record = makeApiKeyRecord({
      createdAt: new Date(-1_234_567),
      updatedAt: new Date('1901-02-03T04:05:06.789Z'),
      expiresAt: new Date('2999-12-31T23:59:59.999Z'),
      lastUsedAt: new Date(1),
    });
    expect(await backend.create(record)).toEqual(record);
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
  });

  it('streams every key an issuer minted across pages, and nothing else', async () => {
    const issuer = randomUUID();
    const minted = Array.from({ length: 5 }, () => makeApiKeyRecord({ issuedById: issuer }));
    for (const record of minted) await backend.create(record);
    await backend.create(makeApiKeyRecord({ issuedById: randomUUID() }));
    const capture = captureStatements();
    let listed;
    try {
      listed = await collect(backend.listByIssuer(issuer));
    } finally {
      capture.stop();
    }
    expect(listed.map((r) => r.id).sort()).toEqual(minted.map((r) => r.id).sort());
    // pageSize 2: five keys take three pages.
    expect(capture.statements).toHaveLength(3);
    expect(await collect(backend.listByIssuer(randomUUID()))).toEqual([]);
  });
});

describe('ensureSchema on a table of an earlier release', () => {
  it('adds version, issued_by_id and disabled_at; old rows read as version 1, issued by nobody, enabled, and update normally', async () => {
    const id = randomUUID();
    await db.query('create schema old');
    await db.query(
      `create table old.api_keys ("id" uuid primary key, "name" varchar(255) not null, "owner_id" varchar(255) not null,
        "key_hash" varchar(128) not null unique, "hint" varchar(64) not null, "scopes" jsonb not null, "metadata" jsonb not null,
        "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, "expires_at" timestamptz(3) null,
        "revoked_at" timestamptz(3) null, "last_used_at" timestamptz(3) null, "rotated_from_id" uuid null)`,
    );
    await db.query(
      `insert into old.api_keys values (?, 'old', 'o', 'h', 'sk_…', '[]', '{}', now(), now(), null, null, null, null)`,
      [id],
    );
    const old = new MikroOrmBackend(orm, { schema: 'old', ensureSchema: true });
    await old.ensureSchema();
    expect(await old.getById(id)).toMatchObject({ version: 1, issuedById: null, environment: null, policy: null, disabledAt: null });
    expect(await old.update(id, { name: 'new', updatedAt: later() }, { expectedVersion: 1 })).toMatchObject({ name: 'new', version: 2 });
    const disabledAt = later();
    expect(await old.update(id, { disabledAt, updatedAt: disabledAt }, { expectedVersion: 2 })).toMatchObject({ disabledAt, version: 3 });
    expect((await collect(old.listAll({ status: 'disabled', now: new Date() }))).map((r) => r.id)).toEqual([id]);
    const indexes = await db.query<{ indexname: string }>("select indexname from pg_indexes where schemaname = 'old' order by 1");
    expect(indexes.map((i) => i.indexname)).toEqual(expect.arrayContaining(['api_keys_issued_by_id_id_index', 'api_keys_created_at_id_index']));
  });
});

describe('MikroOrmBackend and the lifecycle of the ORM it was given', () => {
  const sessions = async () =>
    (
      await db.query<{ n: number }>(
        'select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      )
    )[0]!.n;

  it('after orm.close() answers BackendUnavailableError without reopening a pool; after orm.connect() works again', async () => {
    const own = await initOrm(db.url);
    const other = new MikroOrmBackend(own);
    const record = makeApiKeyRecord();
    await other.create(record);
    await backend.getById(record.id); // the shared ORM's sessions stay; count the change only
    const before = await sessions();
    await own.close();
    const after = await sessions();
    expect(after).toBeLessThan(before);
    await expect(other.getByHash(record.keyHash)).rejects.toBeInstanceOf(BackendUnavailableError);
    // Nothing reopened a connection behind the application's back.
    expect(await sessions()).toBe(after);
    await own.connect();
    try {
      expect((await other.getByHash(record.keyHash))?.id).toBe(record.id);
    } finally {
      await own.close();
    }
  });
});
